"""Downloads: 8 concurrent 10 MiB attachments, server memory and throughput against
serving the same file raw from disk.

    python bench/downloads.py [--database-url URL] [--store local|database]
        [--seconds 10] [--connections 8] [--json results.json]

Seeds a customer, uploads one 10 MiB attachment through the API, then drives
``getTicketAttachment`` (the file itself) with wrk for a bounded time, and the same
file from ``raw_file_app.py`` (a bare ASGI app reading the stored file from disk in
1 MiB blocks on the event loop, with no database, no authentication, no thread). Reports
MB/s of each, their ratio, and the server's peak RSS (the kernel's VmHWM).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.abuse import memory
from bench.servers import start_ledgerdesk, start_yardstick, stop
from bench.throughput import seed

from ledgerdesk.config import Settings

ENDPOINT = "/api/rest/v2/administration"
SIZE = 10 * 1024 * 1024
_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a process and its children so far (Linux)."""
    user = system = 0.0
    for task in [pid, *_children(pid)]:
        fields = Path(f"/proc/{task}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        user += int(fields[11]) / ticks
        system += int(fields[12]) / ticks
    return user, system


def _children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in found.read_text().split()] if found.exists() else []


def measured(pid: int, url: str, body: str, seconds: int, connections: int) -> dict[str, float]:
    """wrk's bytes a second from ``url``, and the server's CPU time per GB sent."""
    user, system = cpu_seconds(pid)
    rate = wrk_post(url, body, seconds, connections)
    user_after, system_after = cpu_seconds(pid)
    gigabytes = rate * seconds / 1e9
    return {
        "rate": rate,
        "user_s_per_gb": (user_after - user) / gigabytes,
        "system_s_per_gb": (system_after - system) / gigabytes,
    }


def wrk_post(url: str, body: str, seconds: int, connections: int) -> float:
    """Bytes per second that wrk read from ``url`` answering ``body``."""
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(body)}\n"
    )
    try:
        output = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        script.unlink()
    if "Non-2xx" in output:
        raise SystemExit(f"failed answers from {url}:\n{output}")
    match = re.search(r"Transfer/sec:\s+([\d.]+)(B|KB|MB|GB)", output)
    if match is None:
        raise SystemExit(f"unexpected wrk output:\n{output}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--store", choices=("local", "database"), default=None)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="ledgerdesk-downloads-"))
    env = {
        **os.environ,
        "LEDGERDESK_DATA_DIR": str(data_dir),
        "LEDGERDESK_RATE_LIMIT": str(10**9),
    }
    if args.database_url:
        env["LEDGERDESK_DATABASE_URL"] = args.database_url
    if args.store:
        env["LEDGERDESK_ATTACHMENT_STORE"] = args.store
    settings = Settings.from_env(env)
    user_id, api_key = seed(settings)
    content = os.urandom(SIZE)
    raw_file = data_dir / "raw.bin"
    raw_file.write_bytes(content)

    server, port = start_ledgerdesk(env)
    try:
        url = f"http://127.0.0.1:{port}{ENDPOINT}"
        credentials = {"userId": user_id, "apiKey": api_key}
        created = httpx.post(
            url,
            json={
                **credentials,
                "action": "createTicket",
                "title": "Crash dump",
                "content": "Attached.",
                "attachments": [
                    {
                        "name": "dump.bin",
                        "contentType": "application/octet-stream",
                        "size": SIZE,
                        "content": base64.b64encode(content).decode(),
                    }
                ],
            },
            timeout=60,
        ).json()
        ticket_id = created["data"]["ticketId"]
        thread = httpx.post(
            url, json={**credentials, "action": "getTicket", "ticketId": ticket_id}, timeout=30
        ).json()
        attachment_id = thread["data"]["replies"][0]["attachments"][0]["attachmentId"]
        body = json.dumps(
            {
                **credentials,
                "action": "getTicketAttachment",
                "ticketId": ticket_id,
                "attachmentId": attachment_id,
            }
        )
        check = httpx.post(
            url, content=body, headers={"Content-Type": "application/json"}, timeout=60
        )
        if check.content != content:
            raise SystemExit(f"the download is not the uploaded file: {check.text[:300]}")
        ledger = measured(server.pid, url, body, args.seconds, args.connections)
        after = memory(server.pid)
    finally:
        stop(server)

    raw, raw_port = start_yardstick("raw_file_app", {**env, "RAW_FILE": str(raw_file)})
    try:
        raw_url = f"http://127.0.0.1:{raw_port}/"
        raw_figures = measured(raw.pid, raw_url, body, args.seconds, args.connections)
    finally:
        stop(raw)

    report = {
        "backend": "sqlite" if settings.is_sqlite else "postgresql",
        "store": settings.attachment_store,
        "connections": args.connections,
        "file_bytes": SIZE,
        "ledgerdesk_mb_per_s": round(ledger["rate"] / 1e6, 1),
        "raw_mb_per_s": round(raw_figures["rate"] / 1e6, 1),
        "ratio": round(ledger["rate"] / raw_figures["rate"], 2),
        "ledgerdesk_cpu_s_per_gb": {
            "user": round(ledger["user_s_per_gb"], 3),
            "system": round(ledger["system_s_per_gb"], 3),
        },
        "raw_cpu_s_per_gb": {
            "user": round(raw_figures["user_s_per_gb"], 3),
            "system": round(raw_figures["system_s_per_gb"], 3),
        },
        "peak_rss_mb": after["peak_rss_mb"],
    }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
