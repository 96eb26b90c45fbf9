"""Throughput of the request path against a bare ASGI app, one worker each.

    python bench/throughput.py [--seconds 10] [--rounds 2] [--database-url URL]

Needs `wrk` (Debian: apt-get install wrk). Both servers run under the same uvicorn
settings on loopback; wrk drives each in turn with a bounded duration, alternating
rounds so that noise from the shared machine hits both alike. The figure that matters
is the ratio measured in one run, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import httpx

from ledgerdesk.accounts.service import AccountService
from ledgerdesk.cli.demo import DEMO_SELLER
from ledgerdesk.config import Settings
from ledgerdesk.db.migrate import upgrade
from ledgerdesk.events.work import Actor, Origin
from ledgerdesk.invoices.parties import SellerService
from ledgerdesk.invoices.pricing import LineInput
from ledgerdesk.invoices.service import InvoiceService
from ledgerdesk.runtime import Runtime

sys.path.insert(0, str(Path(__file__).resolve().parent))
from servers import start_ledgerdesk, start_yardstick, stop

HERE = Path(__file__).resolve().parent


def seed(settings: Settings) -> tuple[int, str]:
    runtime = Runtime.build(settings)
    upgrade(runtime.engine)
    with runtime.work(Actor.SYSTEM, Origin("system")) as work:
        SellerService(work).set(dict(DEMO_SELLER), default_currency=settings.currency)
        accounts = AccountService(work)
        user = accounts.create_user(name="Bench", email=None, staff=False)
        accounts.update_user(user.id, billing={"country": "NL"})
        invoices = InvoiceService(work)
        for days_ago in (20, 10, 1):
            invoices.issue(
                customer=user,
                lines=[LineInput("Bench server", Decimal(1), Decimal(350), 2100)],
                created_on=work.today - timedelta(days=days_ago),
                pay_within_days=30,
            )
        new = accounts.create_key(
            user_id=user.id, categories=(), ip_ranges=(), expires_on=None, note="bench"
        )
        user_id = user.id
    runtime.engine.dispose()
    return user_id, new.secret


def wrk(url: str, body: str, seconds: int, connections: int) -> float:
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)  # noqa: SIM115
    script.write(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(body)}\n"
    )
    script.close()
    output = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", script.name, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(script.name)
    if "Non-2xx" in output:
        raise SystemExit(f"non-2xx answers from {url}:\n{output}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    assert match, output
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="ledgerdesk-bench-"))
    # The limiter still counts every request (its cost is part of the figure), but one
    # key hammered by wrk would be answered 4002 after 600 requests a minute.
    env = {
        **os.environ,
        "LEDGERDESK_DATA_DIR": str(data_dir),
        "LEDGERDESK_RATE_LIMIT": str(10**9),
    }
    if args.database_url:
        env["LEDGERDESK_DATABASE_URL"] = args.database_url
    settings = Settings.from_env(env)
    user_id, api_key = seed(settings)
    body = json.dumps({"userId": user_id, "apiKey": api_key, "action": "getInvoiceIds"})

    ledger, ledger_port = start_ledgerdesk(env)
    answer = httpx.post(
        f"http://127.0.0.1:{ledger_port}/api/rest/v2/administration",
        content=body,
        headers={"Content-Type": "application/json"},
    ).text
    bare, bare_port = start_yardstick("bare_app", {**env, "BARE_BODY": answer})
    results: dict[str, list[float]] = {"bare": [], "ledgerdesk": []}
    try:
        for _ in range(args.rounds):
            results["bare"].append(
                wrk(f"http://127.0.0.1:{bare_port}/", body, args.seconds, args.connections)
            )
            results["ledgerdesk"].append(
                wrk(
                    f"http://127.0.0.1:{ledger_port}/api/rest/v2/administration",
                    body,
                    args.seconds,
                    args.connections,
                )
            )
    finally:
        for process in (ledger, bare):
            stop(process)
    bare_rps = max(results["bare"])
    ledger_rps = max(results["ledgerdesk"])
    backend = "postgresql" if settings.database_url.startswith("postgresql") else "sqlite"
    print(f"answer: {answer}")
    print(f"backend: {backend}, {args.rounds} rounds of {args.seconds}s, {args.connections} conns")
    print(f"bare ASGI   : {', '.join(f'{r:,.0f}' for r in results['bare'])} req/s")
    print(f"ledgerdesk  : {', '.join(f'{r:,.0f}' for r in results['ledgerdesk'])} req/s")
    print(f"ratio (best of each): {ledger_rps / bare_rps:.2f}")


if __name__ == "__main__":
    main()
