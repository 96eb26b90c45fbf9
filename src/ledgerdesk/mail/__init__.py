"""Mail: what comes in (read, threaded into tickets) and what goes out."""
