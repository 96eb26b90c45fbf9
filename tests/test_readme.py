"""The README's administration walkthrough runs verbatim on a fresh data directory.

Every shell line of the section is run in order; where a comment shows the JSON a
command prints, the command's output must be that JSON (`<20 chars>` stands for a new
API key). The invoice number's year follows today's date.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

from ledgerdesk.config import Settings
from ledgerdesk.runtime import Runtime
from tests.factories import make_ticket

README = Path(__file__).resolve().parent.parent / "README.md"


def section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end]


def commands(text: str) -> list[list[tuple[str, Any]]]:
    """Each ```sh block as (command, JSON shown in its comment or None)."""
    blocks = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.DOTALL):
        found: list[tuple[str, Any]] = []
        pending = ""
        for line in block.splitlines():
            code, _, comment = line.partition("  #")
            if not code.strip():
                if found and comment.strip().startswith("{"):
                    found[-1] = (found[-1][0], json.loads(comment.strip()))
                continue
            pending += code.rstrip().removesuffix("\\") + " "
            if code.rstrip().endswith("\\"):
                continue
            shown = comment.strip()
            found.append((pending.strip(), json.loads(shown) if shown.startswith("{") else None))
            pending = ""
        blocks.append(found)
    return blocks


def matches(printed: Any, shown: Any) -> bool:
    if shown == "<20 chars>":
        return isinstance(printed, str) and len(printed) == 20
    if isinstance(shown, dict):
        return (
            isinstance(printed, dict)
            and printed.keys() == shown.keys()
            and all(matches(printed[k], v) for k, v in shown.items())
        )
    if isinstance(shown, str) and re.fullmatch(r"F\d\d-\d{7}", shown):
        return isinstance(printed, str) and printed[3:] == shown[3:]
    return bool(printed == shown)


def test_the_administration_walkthrough_runs_verbatim(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LEDGERDESK_")},
        "LEDGERDESK_DATA_DIR": str(data),
    }
    subprocess.run(["ledgerdesk", "db", "upgrade"], env=env, check=True, capture_output=True)
    blocks = commands(section("Administration"))
    assert len(blocks) == 3
    ran = 0
    for number, block in enumerate(blocks):
        if number == 1:  # "Once Jane has opened a ticket (ticket 1 ...)"
            runtime = Runtime.build(Settings.from_env(env))
            assert make_ticket(runtime, 1) == 1
            runtime.close()
        for command, shown in block:
            result = subprocess.run(
                ["bash", "-c", command], env=env, capture_output=True, text=True, check=False
            )
            assert result.returncode == 0, f"{command}\n{result.stderr}"
            if shown is not None:
                assert matches(json.loads(result.stdout), shown), f"{command}\n{result.stdout}"
            ran += 1
    assert ran == 15
