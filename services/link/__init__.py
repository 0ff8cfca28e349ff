"""The link service: creates short links and resolves them on the hot path."""
