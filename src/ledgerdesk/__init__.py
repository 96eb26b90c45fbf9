"""ledgerdesk: a self-hosted customer account API (invoices and support tickets)."""

__version__ = "0.1.0"
