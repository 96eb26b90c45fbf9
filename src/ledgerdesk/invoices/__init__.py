"""Invoices: numbering, exact money, and the two read actions."""
