"""The event log: every change any door makes, recorded once by the domain, in the
change's own transaction (``work``), and read back in order (``log``)."""
