"""Webhook delivery: the pure parts (signatures, retry schedule)."""
