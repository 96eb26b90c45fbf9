"""``ledgerdesk demo`` and ``ledgerdesk serve`` as a newcomer runs them: real processes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import httpx

from tests.servers import LEDGERDESK, free_port, running


def test_demo_serves_and_its_printed_curl_command_works(tmp_path: Path) -> None:
    port = free_port()
    args = ["--data-dir", str(tmp_path / "demo"), "demo", "--port", str(port)]
    with running(args, port) as process:
        assert process.stdout is not None
        printed = []
        for line in process.stdout:
            printed.append(line)
            if line.startswith("API documentation"):
                break
        text = "".join(printed)
        curls = [line.strip() for line in printed if line.strip().startswith("curl ")]
        answers = [
            json.loads(
                subprocess.run(["bash", "-c", c], capture_output=True, text=True, check=True).stdout
            )
            for c in curls
        ]
    invoices, tickets = answers
    assert invoices["status"] == tickets["status"] == "Success"
    assert len(invoices["data"]["invoiceIds"]) == 3
    assert [t["status"] for t in tickets["data"]["tickets"]] == [1, 0]
    assert re.search(r"apiKey: [A-Za-z0-9]{20}", text)
    assert (tmp_path / "demo" / "ledgerdesk.sqlite3").is_file()


def test_demo_run_twice_reuses_the_data_and_makes_a_new_key(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "demo")
    outputs = [
        subprocess.run(
            [*LEDGERDESK, "--data-dir", data_dir, "demo", "--no-serve"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for _ in range(2)
    ]
    keys = [re.search(r"apiKey: (\w{20})", out).group(1) for out in outputs]  # type: ignore[union-attr]
    assert keys[0] != keys[1]
    listed = subprocess.run(
        [*LEDGERDESK, "--data-dir", data_dir, "admin", "invoice", "list", "--json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert len(json.loads(listed)["invoices"]) == 3


def test_serve_migrates_then_serves(database_url: str) -> None:
    port = free_port()
    with running(["--database-url", database_url, "serve", "--port", str(port)], port):
        document = httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=5).json()
        response = httpx.post(
            f"http://127.0.0.1:{port}/api/rest/v2/administration",
            json={"userId": 1, "apiKey": "x" * 20, "action": "getInvoiceIds"},
            timeout=5,
        )
    assert "/api/rest/v2/administration/getInvoiceIds" in document["paths"]
    assert response.status_code == 401
    assert response.headers["x-request-id"]


def test_version_runs_through_the_console_script() -> None:
    script = Path(sys.executable).parent / "ledgerdesk"
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=True)
    assert "ledgerdesk" in result.stdout
