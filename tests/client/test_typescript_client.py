"""A TypeScript client (openapi-typescript types, openapi-fetch calls) from /openapi.json.

The generated types must compile under `tsc --strict` with the calls in
`typescript/client.ts`, and the compiled client must call every action against a real
server. Needs Node.js and npm (the packages come from the npm registry).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.client.conftest import Server

HERE = Path(__file__).parent / "typescript"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        (shutil.which("node") is None or shutil.which("npm") is None) and not os.environ.get("CI"),
        reason="Node.js and npm are not installed",
    ),
]


def run(command: list[str], cwd: Path) -> str:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_a_typescript_client_compiles_and_calls_every_action(
    server: Server, tmp_path: Path
) -> None:
    for name in ("package.json", "tsconfig.json", "client.ts"):
        shutil.copy(HERE / name, tmp_path / name)
    run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], tmp_path)
    (tmp_path / "openapi.json").write_text(
        json.dumps(httpx.get(f"{server.url}/openapi.json").json())
    )
    run(["npx", "openapi-typescript", "openapi.json", "-o", "schema.d.ts"], tmp_path)
    run(["npx", "tsc", "-p", "tsconfig.json"], tmp_path)  # the generated types fit the calls
    output = run(
        ["node", "out/client.js", server.url, str(server.caller.user_id), server.caller.api_key],
        tmp_path,
    )
    answers = json.loads(output)
    assert answers["invoiceIds"] == list(server.invoice_ids)
    assert answers["number"].startswith("F")
    assert answers["inOverview"] is True
    assert answers["file"] == "ts"
    assert answers["closed"] == f"Ticket thread {answers['ticketId']} has been closed"
    assert answers["reopened"] == f"Ticket thread {answers['ticketId']} has been reopened"
    assert answers["missing"] == 3001
