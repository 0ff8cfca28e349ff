"""What the containers need besides the services: a healthcheck, the topic job, configs."""
