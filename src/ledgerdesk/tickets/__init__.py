"""Support tickets: threads, replies, attachments and the status machine."""
