"""The audit trail: every write and every failed authentication."""
