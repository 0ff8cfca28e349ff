"""The user service: accounts, sign-in tokens the gateway can verify, and API keys."""
