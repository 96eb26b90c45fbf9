"""Memory under abusive bodies: peak RSS of a real server, and whether others still get answers.

    python bench/abuse.py [--database-url URL] [--json results.json]

Three cases, each on a fresh `ledgerdesk serve` (one worker, loopback):

1. a 149 MB JSON body of tiny objects, ``[{},{},...]`` (refused before parsing);
2. the same inside an object, ``{"a":[{},{},...]}`` (refused before parsing);
3. 16 concurrent createTicket requests, each with a 10 MB attachment as base64 JSON.

While 1 and 2 are sent, a second client asks getTicketOverview every 10 ms and
records its slowest answer. The peak RSS is the kernel's high-water mark (VmHWM) of
the server process. Goals (from the hardening issue): case 1 peaks under 3x its size,
other requests answer in under 100 ms meanwhile, case 3 stays under 400 MB.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import multiprocessing
import os
import socket
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.servers import free_port
from bench.throughput import seed
from tests.servers import start, stop

from ledgerdesk.config import Settings

MB = 1_000_000
ENDPOINT = "/api/rest/v2/administration"


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in bytes."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0]) * 1024
    return found


def _probe(url: str, body: bytes, stop: Event, results: Queue[tuple[float, int, int]]) -> None:
    slowest, answers, failures = 0.0, 0, 0
    with httpx.Client(timeout=30) as client:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                response = client.post(
                    url, content=body, headers={"Content-Type": "application/json"}
                )
                ok = response.status_code == 200
            except httpx.HTTPError:
                ok = False
            slowest = max(slowest, time.perf_counter() - started)
            answers += ok
            failures += not ok
            time.sleep(0.01)
    results.put((slowest, answers, failures))


class Prober:
    """Asks a small read every 10 ms and keeps the slowest answer's time.

    In a process of its own: in the sending process it would wait for that process's
    GIL, and measure the client instead of the server.
    """

    def __init__(self, url: str, body: bytes) -> None:
        self._stop = multiprocessing.Event()
        self._results: Queue[tuple[float, int, int]] = multiprocessing.Queue()
        self._process = multiprocessing.Process(
            target=_probe, args=(url, body, self._stop, self._results)
        )
        self.slowest, self.answers, self.failures = 0.0, 0, 0

    def __enter__(self) -> Prober:
        self._process.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self.slowest, self.answers, self.failures = self._results.get(timeout=60)
        self._process.join()


def raw_post(url: str, body: bytes) -> tuple[int, dict[str, Any]]:
    """POST with one sendall: the kernel copies the bytes, this process stays idle
    (an HTTP client library would spend a core of its own chunking 149 MB)."""
    address, _, path = url.removeprefix("http://").partition("/")
    host, _, port = address.partition(":")
    head = (
        f"POST /{path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port)), timeout=120) as sock:

        def send() -> None:
            # The server may answer (and close) before the body is all sent: a body
            # that can only be refused is refused at its first bytes.
            with contextlib.suppress(OSError):
                sock.sendall(head + body)

        sender = threading.Thread(target=send)
        sender.start()
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
        sender.join()
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), json.loads(rest.partition(b"\r\n\r\n")[2])


def serve(env: dict[str, str]) -> tuple[object, int, str]:
    port = free_port()
    process = start(["serve", "--port", str(port)], port, env)
    return process, port, f"http://127.0.0.1:{port}{ENDPOINT}"


def huge_body_case(env: dict[str, str], probe: bytes, body: bytes, label: str) -> dict[str, object]:
    process, _, url = serve(env)
    pid = process.pid  # type: ignore[attr-defined]
    httpx.post(url, content=probe, headers={"Content-Type": "application/json"})
    before = memory(pid)
    with Prober(url, probe) as prober:
        time.sleep(0.5)
        started = time.perf_counter()
        status, answer = raw_post(url, body)
        took = time.perf_counter() - started
        time.sleep(0.2)
    after = memory(pid)
    stop(process)  # type: ignore[arg-type]
    return {
        "case": label,
        "body_bytes": len(body),
        "status": status,
        "answer": answer["data"].get("errorCode", status),
        "seconds": round(took, 2),
        "rss_before_mb": round(before["VmRSS"] / MB),
        "peak_rss_mb": round(after["VmHWM"] / MB),
        "peak_over_body": round(after["VmHWM"] / len(body), 2),
        "probe_answers": prober.answers,
        "probe_failures": prober.failures,
        "probe_slowest_ms": round(prober.slowest * 1000, 1),
    }


def uploads_case(env: dict[str, str], user_id: int, api_key: str) -> dict[str, object]:
    process, _, url = serve({**env, "LEDGERDESK_RATE_LIMIT": str(10**9)})
    pid = process.pid  # type: ignore[attr-defined]
    size = 10 * 1024 * 1024
    content = base64.b64encode(os.urandom(size)).decode()
    before = memory(pid)

    def upload(n: int) -> int:
        body = json.dumps(
            {
                "userId": user_id,
                "apiKey": api_key,
                "action": "createTicket",
                "title": f"upload {n}",
                "content": "a 10 MB attachment",
                "attachments": [
                    {
                        "name": f"dump{n}.bin",
                        "content": content,
                        "contentType": "application/octet-stream",
                        "size": size,
                    }
                ],
            }
        ).encode()
        return httpx.post(
            url, content=body, headers={"Content-Type": "application/json"}, timeout=120
        ).status_code

    started = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(upload, range(16)))
    took = time.perf_counter() - started
    after = memory(pid)
    stop(process)  # type: ignore[arg-type]
    return {
        "case": "16 concurrent 10 MB base64 uploads",
        "statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))},
        "seconds": round(took, 2),
        "rss_before_mb": round(before["VmRSS"] / MB),
        "peak_rss_mb": round(after["VmHWM"] / MB),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="ledgerdesk-abuse-"))
    env = {"LEDGERDESK_DATA_DIR": str(data_dir)}
    if args.database_url:
        env["LEDGERDESK_DATABASE_URL"] = args.database_url
    settings = Settings.from_env({**os.environ, **env})
    user_id, api_key = seed(settings)
    probe = json.dumps(
        {"userId": user_id, "apiKey": api_key, "action": "getTicketOverview"}
    ).encode()
    count = (149 * MB - 2) // 3
    array = b"[" + b"{}," * count + b"{}]"
    wrapped = b'{"a":[' + b"{}," * (count - 2) + b"{}]}"
    results = [
        huge_body_case(env, probe, array, "149 MB [{},{},...]"),
        huge_body_case(env, probe, wrapped, '149 MB {"a":[{},{},...]}'),
        uploads_case(env, user_id, api_key),
    ]
    backend = "postgresql" if settings.database_url.startswith("postgresql") else "sqlite"
    report = {"backend": backend, "results": results}
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
