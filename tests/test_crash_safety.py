"""SIGKILL under load: every answered write is whole, nothing is duplicated or orphaned.

A real server takes concurrent createTicket (base64 attachments) and replyTicket
(multipart files) requests, each with an Idempotency-Key, and is killed with SIGKILL
in the middle, several times. Then, on a fresh start:

- every write that was answered Success is there, whole: its text, and attachments
  whose bytes match their SHA-256;
- every write that was never answered, retried with its Idempotency-Key, is done
  exactly once (never twice);
- storage verifies healthy, and after start-up's cleaning no orphaned bytes and no
  leftover uploads remain;
- the event log holds one event for each write that committed, and none for the rest.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from ledgerdesk.config import Settings
from ledgerdesk.runtime import Runtime
from tests.factories import make_customer, recorded_events
from tests.servers import LEDGERDESK, free_port, kill, start, stop
from tests.support import Caller, json_attachment

pytestmark = pytest.mark.slow

KILLS = 3
WRITERS = 6
ENDPOINT = "/api/rest/v2/administration"


@dataclass(frozen=True)
class Write:
    marker: str
    action: str
    files: tuple[tuple[str, str], ...]  # (name, sha256)
    ticket_id: int | None = None  # for replies


@dataclass
class Ledger:
    """What the clients sent and what the server answered."""

    answered: dict[str, int] = field(default_factory=dict)  # marker -> ticketId
    tickets: list[int] = field(default_factory=list)  # created, for replies to go to
    unanswered: list[Write] = field(default_factory=list)
    sent: dict[str, Write] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def payload(rng: random.Random) -> bytes:
    return rng.randbytes(rng.randint(1, 120_000))


def create_request(
    caller: Caller, marker: str, rng: random.Random
) -> tuple[Write, dict[str, object]]:
    files = [(f"{marker}-{i}.bin", payload(rng)) for i in range(rng.randint(0, 3))]
    body = caller.body(
        "createTicket",
        title=marker,
        content=f"content of {marker}",
        attachments=[json_attachment(name, data) for name, data in files],
    )
    write = Write(
        marker, "createTicket", tuple((n, hashlib.sha256(d).hexdigest()) for n, d in files)
    )
    return write, body


def send(
    client: httpx.Client,
    caller: Caller,
    write: Write,
    body: dict[str, object] | None,
    files: list[tuple[str, bytes]] | None,
) -> httpx.Response:
    headers = {"Idempotency-Key": write.marker}
    if write.action == "createTicket":
        return client.post(ENDPOINT, json=body, headers=headers)
    assert files is not None
    return client.post(
        ENDPOINT,
        data=caller.form(
            "replyTicket", ticketId=str(write.ticket_id), content=f"content of {write.marker}"
        ),
        files=[("attachments[]", (name, data, "application/octet-stream")) for name, data in files],
        headers=headers,
    )


def writer(
    port: int,
    caller: Caller,
    ledger: Ledger,
    seed: int,
    stop_at: float,
    bodies: dict[str, tuple[dict[str, object] | None, list[tuple[str, bytes]] | None]],
) -> None:
    rng = random.Random(seed)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        n = 0
        while time.monotonic() < stop_at:
            n += 1
            marker = f"w{seed}-{n}"
            with ledger.lock:
                targets = list(ledger.tickets)
            files: list[tuple[str, bytes]] | None = None
            body: dict[str, object] | None = None
            if targets and rng.random() < 0.5:
                files = [(f"{marker}-{i}.bin", payload(rng)) for i in range(rng.randint(1, 3))]
                write = Write(
                    marker,
                    "replyTicket",
                    tuple((n_, hashlib.sha256(d).hexdigest()) for n_, d in files),
                    rng.choice(targets),
                )
            else:
                write, body = create_request(caller, marker, rng)
            with ledger.lock:
                ledger.sent[marker] = write
                bodies[marker] = (body, files)
            try:
                response = send(client, caller, write, body, files)
            except httpx.TransportError:
                with ledger.lock:
                    ledger.unanswered.append(write)
                return  # the server is gone
            data = response.json()
            assert data["status"] == "Success", data
            with ledger.lock:
                ledger.answered[marker] = data["data"]["ticketId"]
                if write.action == "createTicket":
                    ledger.tickets.append(data["data"]["ticketId"])


def verify_report(database_url: str, data_dir: Path, store: str) -> dict[str, object]:
    result = subprocess.run(
        [*LEDGERDESK, "admin", "storage", "verify", "--json"],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "LEDGERDESK_DATABASE_URL": database_url,
            "LEDGERDESK_DATA_DIR": str(data_dir),
            "LEDGERDESK_ATTACHMENT_STORE": store,
        },
        check=False,
    )
    report: dict[str, object] = json.loads(result.stdout)
    return report


@pytest.mark.parametrize("store", ["local", "database"])
def test_sigkill_under_load_loses_duplicates_and_leaves_nothing(
    database_url: str, tmp_path: Path, store: str
) -> None:
    data_dir = tmp_path / "data"
    settings = Settings(database_url=database_url, data_dir=data_dir, attachment_store=store)
    runtime = Runtime.build(settings)
    caller = make_customer(runtime)
    runtime.close()
    env = {
        "LEDGERDESK_DATABASE_URL": database_url,
        "LEDGERDESK_DATA_DIR": str(data_dir),
        "LEDGERDESK_ATTACHMENT_STORE": store,
        "LEDGERDESK_RATE_LIMIT": "100000",
    }
    ledger = Ledger()
    bodies: dict[str, tuple[dict[str, object] | None, list[tuple[str, bytes]] | None]] = {}
    rng = random.Random(1234)
    for cycle in range(KILLS):
        port = free_port()
        server = start(["serve", "--port", str(port)], port, env)
        stop_at = time.monotonic() + 30
        threads = [
            threading.Thread(
                target=writer,
                args=(port, caller, ledger, cycle * 100 + i, stop_at, bodies),
            )
            for i in range(WRITERS)
        ]
        for thread in threads:
            thread.start()
        time.sleep(0.8 + rng.random())
        kill(server)
        for thread in threads:
            thread.join(30)
    assert len(ledger.answered) > 0

    port = free_port()
    server = start(["serve", "--port", str(port)], port, env)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            # Unanswered writes, retried with their Idempotency-Key: done exactly once.
            for write in ledger.unanswered:
                body, files = bodies[write.marker]
                response = send(client, caller, write, body, files)
                assert response.json()["status"] == "Success", response.text
                ledger.answered[write.marker] = response.json()["data"]["ticketId"]
            overview = client.post(ENDPOINT, json=caller.body("getTicketOverview")).json()
            titles = [t["title"] for t in overview["data"]["tickets"]]
            assert len(titles) == len(set(titles)), "a ticket was created twice"
            replies_by_marker: dict[str, list[dict[str, object]]] = {}
            for ticket in overview["data"]["tickets"]:
                thread = client.post(
                    ENDPOINT, json=caller.body("getTicket", ticketId=ticket["ticketId"])
                ).json()["data"]
                for reply in thread["replies"]:
                    marker = str(reply["content"]).removeprefix("content of ")
                    replies_by_marker.setdefault(marker, []).append(reply)
                    for attachment in reply["attachments"]:
                        raw = client.post(
                            ENDPOINT,
                            json=caller.body(
                                "getTicketAttachment",
                                ticketId=ticket["ticketId"],
                                attachmentId=attachment["attachmentId"],
                            ),
                        )
                        assert raw.status_code == 200
                        attachment["sha256"] = hashlib.sha256(raw.content).hexdigest()
            for marker in ledger.answered:
                write = ledger.sent[marker]
                found = replies_by_marker.get(marker, [])
                assert len(found) == 1, f"{marker}: stored {len(found)} times"
                stored = [(a["name"], a["sha256"]) for a in found[0]["attachments"]]  # type: ignore[union-attr]
                assert stored == list(write.files), marker
    finally:
        log = stop(server)
    print(  # the figures behind the README's claim (pytest -s shows them)
        f"crash safety [{store}]: {KILLS} kills, {len(ledger.answered)} writes verified, "
        f"{len(ledger.unanswered)} unanswered retried once"
    )
    assert "Traceback" not in log, log
    # The event log holds exactly the writes that committed: one event each, none for
    # a write the kill cut short, none twice for a retried one.
    runtime = Runtime.build(settings)
    try:
        logged = [e for e in recorded_events(runtime) if e.type.startswith("ticket.")]
    finally:
        runtime.close()
    created = sorted(str(e.payload["title"]) for e in logged if e.type == "ticket.created")
    assert created == sorted(titles)
    replied = sorted(
        str(e.payload["content"]).removeprefix("content of ")
        for e in logged
        if e.type == "ticket.replied"
    )
    stored_replies = sorted(
        marker for marker in replies_by_marker if ledger.sent[marker].action == "replyTicket"
    )
    assert replied == stored_replies
    ids = [e.id for e in logged]
    assert ids == sorted(set(ids))
    report = verify_report(database_url, data_dir, store)
    assert report["healthy"] is True
    assert report["orphans"] == []
    assert report["leftovers"] == []
    incoming = data_dir / "attachments" / "incoming"
    assert not incoming.exists() or list(incoming.iterdir()) == []
