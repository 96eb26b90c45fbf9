"""Cheap attacks against a real server, and whether everyone else is still answered.

    python bench/abuse.py [--database-url URL] [--workers 1 2] [--json results.json]

Each case runs on a fresh `ledgerdesk serve` (loopback; the attacker at 127.0.0.1, a
legitimate client at 127.0.0.2 asking all the while) and reports what the attack got,
what the legitimate client got (answers, 503s, other failures, slowest answer) and the
server's peak memory: the kernel's high-water mark (VmHWM) of every server process,
summed (with --workers 2: the supervisor and both workers). The goal: no 503 for the
legitimate client, and memory under 3x the largest body the server accepts (150 MB).

Cases:

slow-bodies       20 connections declare 150 MB bodies and send 3 KB every half second;
                  the client uploads 100 KB attachments
trickle           300 connections from one address send a byte every 5 s; the client
                  from another address reads
web-uploads       20 unauthenticated 20 MB uploads to a console form (chunked): bytes
                  written to disk
sign-in-flood     40 concurrent wrong passwords (Argon2id at full strength); the client
                  creates tickets meanwhile
guesses           40 concurrent wrong API keys against a limit of 10: how many checked
never-read        100 base64 downloads of a 10 MiB attachment that are never read
wrong-types       1,000 requests with an apiKey object or list: any 500?
valid-140-MB      a valid createTicket of ten 10 MiB attachments (140 MB of JSON); the
                  client reads meanwhile: its slowest answer
values-149-MB     149 MB of {"a":[{},{},...]}: refused at its first bytes
16-uploads        16 concurrent createTicket with a 10 MiB base64 attachment each
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
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import httpx
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.servers import start_ledgerdesk, stop
from bench.throughput import seed

from ledgerdesk.accounts.people import PeopleService
from ledgerdesk.config import Settings
from ledgerdesk.runtime import Runtime

MB = 1_000_000
MIB = 1024 * 1024
ENDPOINT = "/api/rest/v2/administration"
LARGEST_BODY = 150 * MIB


def descendants(pid: int) -> list[int]:
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                found += descendants(int(child))
    return found


def peaks(pid: int) -> list[int]:
    """VmHWM of the server and each of its worker processes, in bytes."""
    found = []
    for each in descendants(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    found.append(int(line.split()[1]) * 1024)
    return found


def peak_rss(pid: int) -> int:
    """VmHWM of the server and its worker processes, summed, in bytes."""
    return sum(peaks(pid))


def memory(pid: int) -> dict[str, int]:
    """Peak memory in MB: of every server process summed, and of the largest one."""
    found = peaks(pid)
    return {"peak_rss_mb": sum(found) // MB, "largest_process_mb": max(found, default=0) // MB}


# -- the legitimate client, in a process of its own --------------------------------------


def _client(url: str, kind: str, body: bytes, stop: Event, results: Queue[dict[str, Any]]) -> None:
    times: list[float] = []
    answers = busy = failures = 0
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(transport=transport, timeout=60) as client:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                response = client.post(
                    url, content=body, headers={"Content-Type": "application/json"}
                )
                status = response.status_code
            except httpx.HTTPError:
                status = 0
            times.append(time.perf_counter() - started)
            answers += status == 200
            busy += status == 503
            failures += status not in (200, 503)
            time.sleep(0.1 if kind == "upload" else 0.02)
    times.sort()
    results.put(
        {
            "kind": kind,
            "answers": answers,
            "503": busy,
            "failures": failures,
            "p50_ms": round(1000 * times[len(times) // 2], 1) if times else None,
            "slowest_ms": round(1000 * times[-1], 1) if times else None,
        }
    )


class LegitimateClient:
    """Asks all the while from 127.0.0.2: uploads (a 100 KB attachment) or reads."""

    def __init__(self, url: str, kind: str, body: bytes) -> None:
        self._stop = multiprocessing.Event()
        self._results: Queue[dict[str, Any]] = multiprocessing.Queue()
        self._process = multiprocessing.Process(
            target=_client, args=(url, kind, body, self._stop, self._results)
        )
        self.report: dict[str, Any] = {}

    def __enter__(self) -> LegitimateClient:
        self._process.start()
        time.sleep(0.5)
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self.report = self._results.get(timeout=120)
        self._process.join()


# -- the cases ------------------------------------------------------------------------------


class Target:
    def __init__(self, env: dict[str, str], workers: int, user_id: int, key: str) -> None:
        self.env = env
        self.workers = workers
        self.user_id = user_id
        self.key = key

    def body(self, action: str, **params: Any) -> bytes:
        return json.dumps(
            {"userId": self.user_id, "apiKey": self.key, "action": action, **params}
        ).encode()

    @contextlib.contextmanager
    def server(self, **extra: str) -> Iterator[tuple[int, int, str]]:
        redis_url = self.env.get("LEDGERDESK_REDIS_URL")
        if redis_url:  # each case starts with no counts of the one before
            client = redis.Redis.from_url(redis_url)
            client.flushdb()
            client.close()
        process, port = start_ledgerdesk({**self.env, **extra}, self.workers)
        try:
            yield process.pid, port, f"http://127.0.0.1:{port}{ENDPOINT}"
        finally:
            stop(process)


def head(length: int | None, path: str = ENDPOINT, content_type: str = "application/json") -> bytes:
    size = (
        f"Content-Length: {length}\r\n" if length is not None else "Transfer-Encoding: chunked\r\n"
    )
    return (
        f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: {content_type}\r\n{size}\r\n"
    ).encode()


def upload_body(target: Target) -> bytes:
    data = base64.b64encode(os.urandom(100 * 1024)).decode()
    return target.body(
        "createTicket",
        title="legitimate",
        content="a 100 KB attachment",
        attachments=[
            {
                "name": "a.bin",
                "content": data,
                "contentType": "application/octet-stream",
                "size": 100 * 1024,
            }
        ],
    )


def slow_bodies(target: Target) -> dict[str, Any]:
    with target.server() as (pid, port, url):
        stop_event = threading.Event()
        cut = 0

        def hog() -> None:
            nonlocal cut
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(head(150_000_000) + b'{"pad": "')
                while not stop_event.is_set():
                    try:
                        sock.sendall(b"x" * 3000)
                    except OSError:
                        cut += 1
                        return
                    time.sleep(0.5)

        threads = [threading.Thread(target=hog) for _ in range(20)]
        with LegitimateClient(url, "upload", upload_body(target)) as client:
            for thread in threads:
                thread.start()
            time.sleep(15)
            stop_event.set()
            for thread in threads:
                thread.join()
        return {
            "attack": {"connections": 20, "cut_off": cut},
            "client": client.report,
            **memory(pid),
        }


def trickle(target: Target) -> dict[str, Any]:
    with target.server() as (pid, port, url):
        refused = 0
        held: list[socket.socket] = []
        for _ in range(300):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(head(1000) + b"{")
            held.append(sock)
        time.sleep(0.5)
        for sock in held:
            sock.setblocking(False)
            with contextlib.suppress(BlockingIOError, OSError):
                if sock.recv(100).startswith(b"HTTP/1.1 503"):
                    refused += 1
        with LegitimateClient(url, "read", target.body("getTicketOverview")) as client:
            for _ in range(3):
                for sock in held:
                    with contextlib.suppress(OSError):
                        sock.send(b" ")
                time.sleep(5)
        for sock in held:
            sock.close()
        return {
            "attack": {"connections": 300, "refused_over_the_address_cap": refused},
            "client": client.report,
            **memory(pid),
        }


def web_uploads(target: Target) -> dict[str, Any]:
    data = Path(target.env["LEDGERDESK_DATA_DIR"])

    def on_disk() -> int:
        return sum(
            p.stat().st_size for p in data.rglob("*") if p.is_file() and ".part" in p.name
        ) + sum(p.stat().st_size for p in Path(tempfile.gettempdir()).glob("tmp*") if p.is_file())

    with target.server() as (pid, port, _):
        before = on_disk()
        statuses: list[int] = []
        most = 0

        def upload() -> None:
            nonlocal most
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(
                    head(None, "/console/tickets/1/reply", "multipart/form-data; boundary=b")
                )
                part = (
                    b'--b\r\nContent-Disposition: form-data; name="files"; filename="x.bin"\r\n\r\n'
                )
                sock.sendall(b"%x\r\n%s\r\n" % (len(part), part))
                chunk = b"x" * MIB
                try:
                    for _ in range(20):
                        sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        most = max(most, on_disk() - before)
                except OSError:
                    pass
                with contextlib.suppress(OSError):
                    statuses.append(int(sock.recv(100).split()[1]))

        with ThreadPoolExecutor(20) as pool:
            list(pool.map(lambda _: upload(), range(20)))
        return {
            "attack": {"uploads": 20, "answers": sorted(set(statuses))},
            "written_to_disk_mb": round(most / MB, 1),
            **memory(pid),
        }


def sign_in_flood(target: Target) -> dict[str, Any]:
    runtime = Runtime.build(Settings.from_env(target.env))
    with runtime.transaction(write=True) as (session, _):
        people = PeopleService(session)
        from ledgerdesk.accounts.repository import AccountRepository
        from ledgerdesk.accounts.service import AccountService

        user = AccountService(AccountRepository(session)).create_user(
            name="Flood",
            email=f"flood{time.time_ns()}@example.com",
            staff=False,
            now=runtime.clock.timestamp(),
        )
        secret = people.issue_link(user.id, "invite", now=runtime.clock.timestamp())
        people.set_password_with_link(secret, "the right password", now=runtime.clock.timestamp())
        email = user.email
    runtime.engine.dispose()
    with target.server() as (pid, port, url):
        base = f"http://127.0.0.1:{port}"
        statuses: list[int] = []

        def guess(n: int) -> None:
            with httpx.Client(base_url=base, timeout=120) as client:
                page = client.get("/signin")
                token = page.text.split('name="csrf" value="')[1].split('"')[0]
                answer = client.post(
                    "/signin", data={"csrf": token, "email": email, "password": f"wrong {n}"}
                )
                statuses.append(answer.status_code)

        with (
            LegitimateClient(
                url, "upload", target.body("createTicket", title="t", content="c")
            ) as client,
            ThreadPoolExecutor(40) as pool,
        ):
            list(pool.map(guess, range(40)))
        return {
            "attack": {
                "tries": 40,
                "401_tried": statuses.count(401),
                "429_refused": statuses.count(429),
                "503": statuses.count(503),
            },
            "client": client.report,
            **memory(pid),
        }


def guesses(target: Target) -> dict[str, Any]:
    with target.server() as (pid, _, url):
        codes: list[int] = []

        def guess(n: int) -> None:
            body = json.dumps(
                {
                    "userId": target.user_id,
                    "apiKey": f"{n:020d}".replace("0", "A"),
                    "action": "getTicketOverview",
                }
            )
            codes.append(
                httpx.post(
                    url, content=body, headers={"Content-Type": "application/json"}, timeout=30
                ).json()["data"]["errorCode"]
            )

        with ThreadPoolExecutor(40) as pool:
            list(pool.map(guess, range(40)))
        return {
            "attack": {
                "guesses": 40,
                "limit": 10,
                "checked_2001": codes.count(2001),
                "refused_4002": codes.count(4002),
            },
            **memory(pid),
        }


def never_read(target: Target) -> dict[str, Any]:
    data = os.urandom(10 * MIB)
    with target.server(LEDGERDESK_SEND_TIMEOUT="5") as (pid, port, url):
        made = httpx.post(
            url,
            content=target.body(
                "createTicket",
                title="big",
                content="c",
                attachments=[
                    {
                        "name": "big.bin",
                        "content": base64.b64encode(data).decode(),
                        "contentType": "application/octet-stream",
                        "size": len(data),
                    }
                ],
            ),
            headers={"Content-Type": "application/json"},
            timeout=60,
        ).json()
        ticket_id = made["data"]["ticketId"]
        thread = httpx.post(
            url,
            content=target.body("getTicket", ticketId=ticket_id),
            headers={"Content-Type": "application/json"},
        ).json()
        attachment_id = thread["data"]["replies"][0]["attachments"][0]["attachmentId"]
        body = target.body(
            "getTicketAttachment", ticketId=ticket_id, attachmentId=attachment_id, encoding="base64"
        )
        held = []
        for _ in range(100):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", port))
            sock.sendall(head(len(body)) + body)
            held.append(sock)
        with LegitimateClient(url, "read", target.body("getTicketOverview")) as client:
            time.sleep(8)
        dropped = 0
        for sock in held:
            sock.setblocking(False)
            try:
                while sock.recv(65536):
                    pass
            except BlockingIOError:
                continue
            except OSError:
                dropped += 1
            else:
                dropped += 1
            sock.close()
        return {
            "attack": {"readers": 100, "dropped": dropped},
            "client": client.report,
            **memory(pid),
        }


def wrong_types(target: Target) -> dict[str, Any]:
    with target.server(LEDGERDESK_AUTH_FAILURE_LIMIT="100000") as (pid, _, url):
        counts: dict[int, int] = {}
        with httpx.Client(timeout=30) as client:
            for n in range(1000):
                key: Any = {"k": n} if n % 2 else [n]
                status = client.post(
                    url, json={"userId": [n], "apiKey": key, "action": "getTicket"}
                ).status_code
                counts[status] = counts.get(status, 0) + 1
        return {
            "attack": {"requests": 1000, "statuses": counts},
            **memory(pid),
        }


def valid_140_mb(target: Target) -> dict[str, Any]:
    content = base64.b64encode(os.urandom(10 * MIB)).decode()
    body = target.body(
        "createTicket",
        title="ten files",
        content="c",
        attachments=[
            {
                "name": f"f{n}.bin",
                "content": content,
                "contentType": "application/octet-stream",
                "size": 10 * MIB,
            }
            for n in range(10)
        ],
    )
    with target.server() as (pid, _, url):
        with LegitimateClient(url, "read", target.body("getTicketOverview")) as client:
            started = time.perf_counter()
            status = httpx.post(
                url, content=body, headers={"Content-Type": "application/json"}, timeout=300
            ).status_code
            took = time.perf_counter() - started
            time.sleep(0.3)
        peak = peak_rss(pid)
        return {
            "attack": {
                "body_mb": round(len(body) / MB),
                "status": status,
                "seconds": round(took, 1),
            },
            "client": client.report,
            **memory(pid),
            "peak_over_body": round(peak / len(body), 2),
        }


def raw_post(port: int, body: bytes) -> int:
    """POST with one sendall (an HTTP library would spend a core chunking 149 MB); the
    server may answer and close before the body is all sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:

        def send() -> None:
            closing = head(len(body)).replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
            with contextlib.suppress(OSError):
                sock.sendall(closing + body)

        sender = threading.Thread(target=send)
        sender.start()
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                answer += chunk
        sender.join()
    document = answer.partition(b"\r\n\r\n")[2]
    return int(json.JSONDecoder().raw_decode(document.decode())[0]["data"].get("errorCode", 0))


def values_149_mb(target: Target) -> dict[str, Any]:
    count = (149 * MB - 2) // 3
    body = b'{"a":[' + b"{}," * (count - 2) + b"{}]}"
    with target.server() as (pid, port, url):
        with LegitimateClient(url, "read", target.body("getTicketOverview")) as client:
            started = time.perf_counter()
            code = raw_post(port, body)
            took = time.perf_counter() - started
        return {
            "attack": {
                "body_mb": round(len(body) / MB),
                "errorCode": code,
                "seconds": round(took, 2),
            },
            "client": client.report,
            **memory(pid),
        }


def uploads_16(target: Target) -> dict[str, Any]:
    size = 10 * MIB
    content = base64.b64encode(os.urandom(size)).decode()
    with target.server() as (pid, _, url):

        def upload(n: int) -> int:
            body = target.body(
                "createTicket",
                title=f"upload {n}",
                content="a 10 MB attachment",
                attachments=[
                    {
                        "name": f"d{n}.bin",
                        "content": content,
                        "contentType": "application/octet-stream",
                        "size": size,
                    }
                ],
            )
            return httpx.post(
                url, content=body, headers={"Content-Type": "application/json"}, timeout=300
            ).status_code

        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(upload, range(16)))
        return {
            "attack": {
                "uploads": 16,
                "statuses": {str(s): statuses.count(s) for s in set(statuses)},
            },
            **memory(pid),
        }


CASES: dict[str, Callable[[Target], dict[str, Any]]] = {
    "slow-bodies": slow_bodies,
    "trickle": trickle,
    "web-uploads": web_uploads,
    "sign-in-flood": sign_in_flood,
    "guesses": guesses,
    "never-read": never_read,
    "wrong-types": wrong_types,
    "valid-140-MB": valid_140_mb,
    "values-149-MB": values_149_mb,
    "16-uploads": uploads_16,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--redis-url", default=None, help="shared rate-limit counters (for --workers 2)"
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--case", action="append", choices=sorted(CASES), help="only these")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="ledgerdesk-abuse-"))
    env = {**os.environ, "LEDGERDESK_DATA_DIR": str(data_dir), "LEDGERDESK_RATE_LIMIT": str(10**6)}
    if args.database_url:
        env["LEDGERDESK_DATABASE_URL"] = args.database_url
    if args.redis_url:
        env["LEDGERDESK_REDIS_URL"] = args.redis_url
    settings = Settings.from_env(env)
    user_id, key = seed(settings)
    backend = "sqlite" if settings.is_sqlite else "postgresql"
    report: dict[str, Any] = {"backend": backend, "largest_body_mb": LARGEST_BODY // MB, "runs": []}
    for workers in args.workers:
        target = Target(env, workers, user_id, key)
        for name in args.case or CASES:
            result = {"case": name, "workers": workers, **CASES[name](target)}
            print(json.dumps(result), flush=True)
            report["runs"].append(result)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
