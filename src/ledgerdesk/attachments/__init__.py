"""Attachment bytes: incoming uploads, and the stores that keep them outside the rows."""
