"""Idempotency-Key: the first answer to a write, replayed for repeats within 24 hours."""
