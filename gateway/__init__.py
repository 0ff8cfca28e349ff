"""The gateway: the only public entry, routing by path to the services."""
