"""What a file attached to a message may be: how many, its name, its media type.

The protocol's schemas, the web's upload forms and the services check files by the same
rules; the bytes' limit is a setting (``LEDGERDESK_MAX_ATTACHMENT_BYTES``).
"""

from __future__ import annotations

import re

# Files one message (a ticket's first message, a reply, a note) may carry.
MAX_ATTACHMENTS = 10
MAX_FILE_NAME = 200

_RESTRICTED_NAME = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
_MEDIA_TYPE = re.compile(
    rf"{_RESTRICTED_NAME}/{_RESTRICTED_NAME}(\s*;\s*[A-Za-z0-9!#$&^_.+-]+=(\"[^\"\\\r\n]*\"|[A-Za-z0-9!#$&^_.+-]+))*"
)


def check_media_type(value: str) -> str | None:
    """What is wrong with a media type, or None when it is a well-formed one."""
    if len(value) > 255 or not _MEDIA_TYPE.fullmatch(value):
        return "must be a media type such as image/png"
    return None


def check_file_name(value: str) -> str | None:
    """What is wrong with a file name, or None. Names are kept as given, never used as paths."""
    if not value.strip():
        return "must not be blank"
    if len(value) > MAX_FILE_NAME:
        return f"must be at most {MAX_FILE_NAME} characters"
    if "\x00" in value:
        return "must not contain NUL characters"
    return None
