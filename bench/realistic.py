"""Real traffic: many customers, a million tickets and invoices, every request from a
random customer; ledgerdesk against a bare ASGI app and a minimal app doing the same
queries (asyncpg on PostgreSQL, sqlite3 on SQLite).

    python bench/realistic.py [--backend sqlite|postgresql|both] [--seconds 10]
        [--customers 50000 --tickets 1000000 --invoices 1000000] [--workers 1]
        [--workloads getTicketOverview,getTicket,getInvoiceIds,getInvoiceDetails,mix]
        [--json results.json] [--reuse]

Needs `wrk` (Debian: apt-get install wrk) and, for PostgreSQL, a server at
``--postgres-url`` where it may create the database ``ledgerdesk_bench``. Seeds the
data in bulk (bench/seed_bulk.py), then, for each workload, drives each server in turn
with wrk (1 thread, 32 connections, bench/realistic.lua picking a random customer for
each request), alternating the servers in every round so that the shared machine's
noise hits all alike. Prints and writes requests per second, p50 and p99 latency, and
the ratios; the servers are:

- ``bare``: reads the body, parses the JSON, answers fixed bytes (ledgerdesk's own
  answer to a typical request of that action);
- ``asyncpg`` (PostgreSQL) or ``sqlite3`` (SQLite): raw ASGI + the driver doing the
  same queries (bench/yardstick.py);
- ``ledgerdesk``: ``ledgerdesk serve`` with ``--workers``.

Nothing is served from a cache that one customer polling alone would fill: with 50,000
customers the read cache (SQLite) rarely holds the answer asked for.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from seed_bulk import Layout, key_secret, recreate_postgres_database, seed, sqlite_path

from ledgerdesk.config import Settings
from servers import HERE, start_ledgerdesk, start_yardstick, stop

WORKLOADS = ("getTicketOverview", "getTicket", "getInvoiceIds", "getInvoiceDetails", "mix")
# Asked for by name: uploads grow the database by 100 KB a request.
EXTRA_WORKLOADS = ("createTicket100k",)
# The same-work yardstick of each backend (bench/asyncpg_app.py, bench/sqlite_app.py).
REFERENCE = {"postgresql": "asyncpg", "sqlite": "sqlite3"}


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def wrk(url: str, env: dict[str, str], seconds: int, connections: int) -> dict[str, float]:
    result = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(HERE / "realistic.lua"),
            url,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    output = result.stdout
    if "unexpected answer" in result.stderr or "Non-2xx" in output:
        raise SystemExit(f"failed answers from {url}:\n{result.stderr}\n{output}")
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"\s50%\s+([\d.]+(?:us|ms|s))", output)
    p99 = re.search(r"\s99%\s+([\d.]+(?:us|ms|s))", output)
    if not (rps and p50 and p99):
        raise SystemExit(f"unexpected wrk output:\n{output}")
    return {"rps": float(rps.group(1)), "p50_ms": _ms(p50.group(1)), "p99_ms": _ms(p99.group(1))}


def sample_answers(url: str, layout: Layout) -> dict[str, str]:
    """ledgerdesk's answer to one typical request of each action (for the bare app),
    checking on the way that the seeded data and the protocol agree."""
    customer = layout.customers // 2
    base = {"userId": customer + 1, "apiKey": key_secret(customer)}
    today = datetime.now(UTC).date()
    requests = {
        "getTicketOverview": {},
        "getTicket": {"ticketId": customer},
        "getInvoiceIds": {
            "status": -1,
            "dateStart": today.replace(year=today.year - 1).strftime("%d-%m-%Y"),
            "dateEnd": today.strftime("%d-%m-%Y"),
        },
        "getInvoiceDetails": {"invoiceId": customer},
        "createTicket": {"title": "Bench", "content": "A sample ticket.", "priorityId": 2},
    }
    answers = {}
    for action, params in requests.items():
        answer = httpx.post(url, json={**base, "action": action, **params}, timeout=30)
        if answer.json().get("status") != "Success":
            raise SystemExit(f"{action}: {answer.text}")
        answers[action] = answer.text
    return answers


def run_backend(
    backend: str, args: argparse.Namespace, layout: Layout, work: Path
) -> dict[str, Any]:
    env = {
        **os.environ,
        "LEDGERDESK_RATE_LIMIT": str(10**9),
        "LEDGERDESK_DATA_DIR": str(work / backend),
    }
    if backend == "postgresql":
        admin = args.postgres_url
        database_url = admin.rsplit("/", 1)[0] + "/ledgerdesk_bench"
        env["LEDGERDESK_DATABASE_URL"] = database_url
    settings = Settings.from_env(env)
    seeded = _already_seeded(settings, layout) if args.reuse else False
    timings: dict[str, float] = {}
    if not seeded:
        if backend == "postgresql":
            recreate_postgres_database(args.postgres_url, "ledgerdesk_bench")
        else:
            (work / backend).mkdir(parents=True, exist_ok=True)
            for suffix in ("", "-wal", "-shm"):
                Path(sqlite_path(settings) + suffix).unlink(missing_ok=True)
        started = time.perf_counter()
        timings = seed(settings, layout, int(time.time()), datetime.now(UTC).date())
        timings["total"] = time.perf_counter() - started
        print(f"{backend}: seeded in {timings['total']:.1f} s ({_timings(timings)})", flush=True)

    servers: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
    ledger, ledger_port = start_ledgerdesk(env, args.workers)
    api = f"http://127.0.0.1:{ledger_port}/api/rest/v2/administration"
    servers["ledgerdesk"] = (ledger, api)
    try:
        answers_file = work / f"answers-{backend}.json"
        answers_file.write_text(json.dumps(sample_answers(api, layout)))
        bare, bare_port = start_yardstick("bare_app", {**env, "BARE_ANSWERS": str(answers_file)})
        servers["bare"] = (bare, f"http://127.0.0.1:{bare_port}/")
        # The same queries by hand: asyncpg on PostgreSQL, the stdlib's sqlite3 on SQLite.
        if backend == "postgresql":
            reference, reference_port = start_yardstick(
                "asyncpg_app", {**env, "DATABASE_URL": database_url.replace("+psycopg", "")}
            )
        else:
            reference, reference_port = start_yardstick(
                "sqlite_app", {**env, "DATABASE_PATH": sqlite_path(settings)}
            )
        servers[REFERENCE[backend]] = (reference, f"http://127.0.0.1:{reference_port}/")
        results: dict[str, Any] = {}
        for workload in args.workloads:
            runs: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
            for round_number in range(args.rounds):
                for name, (_, url) in servers.items():
                    load_env = {
                        **os.environ,
                        "BENCH_CUSTOMERS": str(layout.customers),
                        "BENCH_TICKETS": str(layout.tickets),
                        "BENCH_INVOICES": str(layout.invoices),
                        "BENCH_WORKLOAD": workload,
                        "BENCH_SEED": str(round_number + 1),
                    }
                    if name == REFERENCE[backend] and workload in EXTRA_WORKLOADS:
                        continue  # the reference apps take no attachments
                    runs[name].append(wrk(url, load_env, args.seconds, args.connections))
            best = {name: max(r, key=lambda run: run["rps"]) for name, r in runs.items() if r}
            entry: dict[str, Any] = {"runs": runs, "best": best}
            entry["ratio_to_bare"] = round(best["ledgerdesk"]["rps"] / best["bare"]["rps"], 3)
            reference_name = REFERENCE[backend]
            if reference_name in best:
                entry[f"ratio_to_{reference_name}"] = round(
                    best["ledgerdesk"]["rps"] / best[reference_name]["rps"], 3
                )
            results[workload] = entry
            print(f"{backend} {workload}: {_line(entry)}", flush=True)
    finally:
        for process, _ in servers.values():
            stop(process)
    return {"seed_seconds": timings, "workloads": results}


def _already_seeded(settings: Settings, layout: Layout) -> bool:
    from sqlalchemy import create_engine, text

    engine = create_engine(settings.database_url)
    try:
        with engine.connect() as connection:
            users = connection.execute(text("SELECT count(*) FROM users")).scalar_one()
            tickets = connection.execute(text("SELECT max(id) FROM tickets")).scalar_one()
            invoices = connection.execute(text("SELECT count(*) FROM invoices")).scalar_one()
    except Exception:
        return False
    finally:
        engine.dispose()
    return bool(
        users == layout.customers + 1
        and (tickets or 0) >= layout.tickets
        and invoices == layout.invoices
    )


def _timings(timings: dict[str, float]) -> str:
    return ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items())


def _line(entry: dict[str, Any]) -> str:
    parts = [
        f"{name} {run['rps']:,.0f} req/s p50 {run['p50_ms']:.2f} ms p99 {run['p99_ms']:.2f} ms"
        for name, run in entry["best"].items()
    ]
    ratios = f"ratio to bare {entry['ratio_to_bare']:.2f}"
    for name in REFERENCE.values():
        if f"ratio_to_{name}" in entry:
            ratios += f", to {name} {entry[f'ratio_to_{name}']:.2f}"
    return " | ".join(parts) + f" | {ratios}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument(
        "--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--reuse", action="store_true", help="keep data seeded by a previous run")
    parser.add_argument("--json", type=Path, help="write the results to this file")
    args = parser.parse_args()
    args.workloads = [w for w in args.workloads.split(",") if w]
    unknown = set(args.workloads) - set(WORKLOADS) - set(EXTRA_WORKLOADS)
    if unknown:
        parser.error(f"unknown workloads: {', '.join(sorted(unknown))}")
    layout = Layout(args.customers, args.tickets, args.invoices)
    work = args.work_dir / f"ledgerdesk-realistic-{layout.customers}-{layout.tickets}"
    work.mkdir(parents=True, exist_ok=True)
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    report: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "layout": vars(layout),
        "settings": {
            "seconds": args.seconds,
            "rounds": args.rounds,
            "connections": args.connections,
            "workers": args.workers,
        },
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    for backend in backends:
        report[backend] = run_backend(backend, args, layout, work)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"results written to {args.json}")


if __name__ == "__main__":
    main()
