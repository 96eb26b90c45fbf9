"""The README's administration and web console walkthroughs run verbatim on a fresh
data directory.

Every shell line of the section is run in order; where a comment shows the JSON a
command prints, the command's output must be that JSON (`<20 chars>` stands for a new
API key). The invoice number's year follows today's date.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ledgerdesk.accounts.people import PeopleService
from ledgerdesk.config import Settings
from ledgerdesk.errors import NotFound
from ledgerdesk.runtime import Runtime
from tests.factories import make_ticket, make_user
from tests.servers import free_port, start, stop

pytestmark = pytest.mark.slow  # README: left out of scripts/test's fast run

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


def shell(
    command: str, env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """A README line in bash, its ``ledgerdesk`` being this interpreter's (not whatever
    is on PATH: the tests run from a virtual environment that need not be activated)."""
    here = f'ledgerdesk() {{ "{sys.executable}" -m ledgerdesk "$@"; }}; '
    return subprocess.run(
        ["bash", "-c", here + command],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


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


def exported(command: str, env: dict[str, str]) -> bool:
    """Apply an ``export A=B C=D`` line to ``env`` (each command runs in a shell of its
    own, as the README's lines would in one terminal)."""
    if not command.startswith("export "):
        return False
    for assignment in command.removeprefix("export ").split():
        name, _, value = assignment.partition("=")
        env[name] = value
    return True


def test_the_administration_and_console_walkthroughs_run_verbatim_in_order(
    tmp_path: Path,
) -> None:
    """As a newcomer reads them: one data directory, the sections one after the other."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERDESK_")}
    blocks = [
        *commands(section("Administration")),
        *commands(section("The web console and the customer portal")),
    ]
    assert len(blocks) == 4
    ran = 0
    links: list[str] = []
    for number, block in enumerate(blocks):
        if number == 1:  # "Once Jane has opened a ticket (ticket 1 ...)"
            runtime = Runtime.build(
                Settings.from_env(
                    {**env, "LEDGERDESK_DATA_DIR": str(tmp_path / "walkthrough-data")}
                )
            )
            assert make_ticket(runtime, 1) == 1
            runtime.close()
        for command, shown in block:
            if exported(command, env):
                continue
            result = shell(command, env, cwd=tmp_path)
            assert result.returncode == 0, f"{command}\n{result.stderr}"
            if shown is not None:
                assert matches(json.loads(result.stdout), shown), f"{command}\n{result.stdout}"
            found = re.findall(r"http://127.0.0.1:8080/password/(\S+)", result.stdout)
            links += found
            if found and "reset-password" in command:
                # The reset link replaced the invitation: it works, the invitation does not.
                data_env = {
                    **env,
                    "LEDGERDESK_DATA_DIR": str(tmp_path / env["LEDGERDESK_DATA_DIR"]),
                }
                assert _link_owner(data_env, links[-1]) == "sam@example.com"
                assert _link_owner(data_env, links[-2]) is None
            ran += 1
    assert ran == 30
    assert len(links) == 2
    data_env = {**env, "LEDGERDESK_DATA_DIR": str(tmp_path / env["LEDGERDESK_DATA_DIR"])}
    assert _link_owner(data_env, links[1]) is None  # disabling the user ended it


def test_shell_blocks_hold_commands_not_synopses() -> None:
    """``list [--status paid|unpaid|all]`` in a shell block runs as a pipe when pasted."""
    text = README.read_text(encoding="utf-8")
    for block in re.findall(r"```sh\n(.*?)```", text, re.DOTALL):
        assert not re.search(r"\[--[^\]]*\|", block), block
        checked = subprocess.run(["bash", "-n"], input=block, text=True, capture_output=True)
        assert checked.returncode == 0, f"{block}\n{checked.stderr}"


def test_running_it_runs_beside_the_demo(tmp_path: Path) -> None:
    """``serve`` in "Running it" takes another port than the demo's 8080."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LEDGERDESK_")},
        "LEDGERDESK_DATA_DIR": str(tmp_path / "data"),
    }
    (block,) = commands(section("Running it").split("### Configuration")[0])
    serve = [c for c, _ in block if " serve " in f" {c} "]
    assert serve == ["ledgerdesk serve --port 8090"]
    for command, _ in block:
        if command not in serve:
            assert shell(command, env).returncode == 0, command


def _link_owner(env: dict[str, str], secret: str) -> str | None:
    runtime = Runtime.build(Settings.from_env(env))
    try:
        with runtime.transaction(write=False) as (session, _):
            try:
                user = PeopleService(session).link_user(secret, now=runtime.clock.timestamp())
            except NotFound:
                return None
            return user.email
    finally:
        runtime.close()


def shape(value: Any) -> Any:
    """What a documented answer promises: the keys, nesting and kinds, not the values
    (times, codes and keys differ from run to run)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    if isinstance(value, bool) or value is None:
        return type(value).__name__
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def examples(text: str) -> list[tuple[str, Any]]:
    """Each ```sh block with the ```json answer shown right after it (or None)."""
    found = []
    for match in re.finditer(r"```sh\n(.*?)```\n(```json\n(.*?)```)?", text, re.DOTALL):
        command = re.sub(r"\\\n\s*", " ", match.group(1)).strip()
        found.append((command, json.loads(match.group(3)) if match.group(3) else None))
    return found


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, re.DOTALL)


def test_the_customer_and_api_examples_run_against_the_demo_as_shown(tmp_path: Path) -> None:
    """Pasted in order against ``ledgerdesk demo`` on a fresh data directory, in an empty
    folder: every file an example sends, the README makes first."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERDESK_")}
    process = start(["--data-dir", str(tmp_path / "data"), "demo", "--port", str(port)], port, env)
    work = tmp_path / "work"
    work.mkdir()
    try:
        assert process.stdout is not None
        key = None
        for line in process.stdout:
            found = re.search(r"apiKey: ([A-Za-z0-9]{20})", line)
            if found:
                key = found.group(1)
                break
        assert key is not None

        def ours(text: str) -> str:
            return text.replace("Xb8kT2...", key).replace("127.0.0.1:8080", f"127.0.0.1:{port}")

        customers = section("For customers: the Python SDK and the command line")
        (snippet,) = python_blocks(customers)
        ran = subprocess.run(
            [sys.executable, "-c", ours(snippet)], cwd=work, env=env, capture_output=True, text=True
        )
        assert ran.returncode == 0, ran.stderr
        assert "Usage attached." in ran.stdout
        (block,) = commands(customers)
        shell_env = dict(env)
        for command, _ in block:
            if exported(ours(command), shell_env):
                continue
            result = shell(ours(command), shell_env, cwd=work)
            assert result.returncode == 0, f"{command}\n{result.stderr}"
        assert (work / "downloads" / "traceroute.txt").is_file()

        ran_examples = 0
        for command, shown in examples(section("The API")):
            result = shell(ours(command), env, cwd=work)
            assert result.returncode == 0, f"{command}\n{result.stderr}"
            if shown is not None:
                answer = json.loads(result.stdout)
                assert shape(answer) == shape(shown), f"{command}\n{result.stdout}"
            ran_examples += 1
        assert ran_examples == 9
        assert (work / "traceroute.txt").is_file()  # curl -OJ wrote the attachment
    finally:
        stop(process)


def test_the_backup_commands_run_as_shown(tmp_path: Path) -> None:
    """Operations → Backups: made beside a data directory with a ticket, verified,
    restored into a new one, whose storage verifies."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERDESK_")}
    env["LEDGERDESK_DATA_DIR"] = str(tmp_path / "ledgerdesk-data")
    assert shell("ledgerdesk db upgrade", env, cwd=tmp_path).returncode == 0
    runtime = Runtime.build(Settings.from_env(env))
    try:
        user = make_user(runtime, name="Ann")
        make_ticket(runtime, user)
    finally:
        runtime.close()
    [block] = commands(section("Backups"))
    assert len(block) == 4
    for command, _ in block:
        result = shell(command, env, cwd=tmp_path)
        assert result.returncode == 0, f"{command}\n{result.stdout}{result.stderr}"
    assert "Missing: 0. Corrupt: 0." in result.stdout
    restored = Runtime.build(
        Settings.from_env({**env, "LEDGERDESK_DATA_DIR": str(tmp_path / "restored")})
    )
    try:
        with restored.transaction(write=False) as (session, _):
            from sqlalchemy import func, select

            from ledgerdesk.db.models import Ticket

            assert session.scalar(select(func.count()).select_from(Ticket)) == 1
    finally:
        restored.close()
