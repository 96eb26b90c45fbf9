"""HTTP pieces that every door shares and no protocol owns: the client's address behind
trusted proxies, request ids and JSON answers, bounded memory for bodies, streaming
multipart uploads, form-field nesting, content disposition, and the fixed-window
counters that the API's rate limits and the sign-in throttle are built from."""
