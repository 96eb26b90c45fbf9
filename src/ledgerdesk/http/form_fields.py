"""Form fields with PHP's bracket names, as old i3D clients send them.

PHP's ``http_build_query`` encodes nested arrays as bracketed names::

    attachments[0][name]=log.txt&attachments[0][content]=aGk%3D&attachments[0][size]=2

``nest`` turns such fields into the structure a JSON body would carry
(``{"attachments": [{"name": "log.txt", ...}]}``), so every write understands them.
``a[]`` appends to a list; a level whose keys are all numbers becomes a list in
numeric order. Depth and indexes are bounded, and a name used both as a value and as
a container is refused rather than one silently winning.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from ledgerdesk.errors import InvalidBody

MAX_DEPTH = 4
MAX_INDEX = 1000
_NAME = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])*)")
_PART = re.compile(r"\[([^\[\]]*)\]")


def nest(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Form pairs as a (possibly nested) object; plain names stay as they are."""
    root: dict[str, Any] = {}
    for name, value in pairs:
        match = _NAME.fullmatch(name)
        if match is None or not match.group(2):
            # A plain name (or one PHP would not nest): the last value wins, as before.
            if isinstance(root.get(name), dict | list):
                raise _conflict(name)
            root[name] = value
            continue
        path = [match.group(1), *_PART.findall(match.group(2))]
        if len(path) > MAX_DEPTH + 1:
            raise InvalidBody(f"Form field {name!r} nests more than {MAX_DEPTH} levels.")
        _put(root, path, value, name)
    return {key: _listed(value) for key, value in root.items()}


def _put(root: dict[str, Any], path: list[str], value: str, name: str) -> None:
    node: dict[str, Any] = root
    for position, key in enumerate(path):
        last = position == len(path) - 1
        if key == "":
            key = str(_next_index(node))
        elif key.isdigit() and int(key) >= MAX_INDEX:
            raise InvalidBody(f"Form field {name!r}: indexes go up to {MAX_INDEX - 1}.")
        if last:
            if isinstance(node.get(key), dict):
                raise _conflict(name)
            node[key] = value
            return
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise _conflict(name)
        node = child


def _next_index(node: dict[str, Any]) -> int:
    numbers = [int(k) for k in node if k.isdigit()]
    index = max(numbers) + 1 if numbers else 0
    if index >= MAX_INDEX:
        raise InvalidBody(f"A form list holds more than {MAX_INDEX} values.")
    return index


def _listed(value: Any) -> Any:
    """Levels keyed only by numbers become lists, in numeric order."""
    if not isinstance(value, dict):
        return value
    items = {key: _listed(inner) for key, inner in value.items()}
    if items and all(key.isdigit() for key in items):
        return [items[key] for key in sorted(items, key=int)]
    return items


def _conflict(name: str) -> InvalidBody:
    return InvalidBody(f"Form field {name!r} is used both as a value and as a list or object.")
