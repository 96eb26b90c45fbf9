"""Free-text search in SQL that means the same on SQLite and PostgreSQL."""

from __future__ import annotations

# The escape character of every pattern made by like_pattern.
ESCAPE = "\\"


def like_pattern(text: str) -> str:
    """A LIKE pattern finding ``text`` anywhere in a lower-cased column, wildcards escaped.

    Used as ``func.lower(column).like(like_pattern(text), escape=ESCAPE)``.
    """
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
