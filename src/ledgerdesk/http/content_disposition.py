"""``Content-Disposition: attachment`` for any file name (RFC 6266 with RFC 5987).

Names are kept as customers gave them, Unicode included; the header carries an ASCII
fallback for old clients and the exact name percent-encoded in ``filename*``.
"""

from __future__ import annotations

from urllib.parse import quote


def attachment_disposition(name: str) -> str:
    fallback = (
        "".join(ch if 0x20 <= ord(ch) < 0x7F and ch not in '"\\\\' else "_" for ch in name).strip()
        or "attachment"
    )
    encoded = quote(name, safe="!#$&+-.^_`|~")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
