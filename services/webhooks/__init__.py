"""The webhooks service: tells endpoints its users register about their links' events."""
