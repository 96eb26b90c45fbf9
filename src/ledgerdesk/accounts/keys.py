"""API key material: generation, hashing, comparison, and the wire form of user ids."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string

KEY_ALPHABET = string.ascii_letters + string.digits
KEY_LENGTH = 20

_USER_ID = re.compile(r"[Kk]?([0-9]{1,18})")
_KEY = re.compile(f"[A-Za-z0-9]{{{KEY_LENGTH}}}")


def generate_key() -> str:
    return "".join(secrets.choice(KEY_ALPHABET) for _ in range(KEY_LENGTH))


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def hashes_match(stored: str, candidate: str) -> bool:
    return hmac.compare_digest(stored.encode("ascii"), candidate.encode("ascii"))


def parse_user_id(raw: object) -> int | None:
    """``12345``, ``"12345"`` and ``"K12345"`` name the same user; anything else is None."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw if 0 < raw < 2**63 else None
    if isinstance(raw, str):
        match = _USER_ID.fullmatch(raw.strip())
        if match:
            value = int(match.group(1))
            return value if value > 0 else None
    return None


def is_well_formed_key(raw: object) -> bool:
    return isinstance(raw, str) and _KEY.fullmatch(raw) is not None
