"""The webhooks service: tells endpoints owners register about clicks and link changes."""
