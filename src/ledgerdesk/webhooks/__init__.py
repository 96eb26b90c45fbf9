"""Webhooks: telling other systems what happened, signed (Standard Webhooks) and sent
only to public addresses."""
