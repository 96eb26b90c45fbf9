"""Starting and stopping the servers the benchmarks compare, on loopback."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# The same uvicorn settings as `ledgerdesk serve` uses, for the yardstick apps.
UVICORN = ["--no-access-log", "--loop", "uvloop", "--http", "httptools"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# What uvicorn logs when a worker's application has started (once per worker process).
STARTED = "Application startup complete."


def start(
    command: list[str], port: int, env: dict[str, str], workers: int = 1
) -> subprocess.Popen[bytes]:
    """Run ``command``, wait until ``port`` accepts connections and, with several
    ``workers``, each has started its application (the socket is bound before they
    are; a load sent before lands on the first worker alone, as wrk keeps its
    connections), then a moment more. One process starts before it binds."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    log: list[str] = []
    reader = threading.Thread(target=_collect, args=(process, log), daemon=True)
    reader.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        started = sum(STARTED in line for line in list(log))
        if (workers == 1 or started >= workers) and _accepts(port):
            time.sleep(0.5)  # let every worker finish its start-up
            return process
        time.sleep(0.1)
    process.kill()
    reader.join(timeout=5)
    error = "".join(log)
    raise SystemExit(f"{command} did not start on {port}:\n{error}")


def _collect(process: subprocess.Popen[bytes], log: list[str]) -> None:
    """The server's log lines, as they come (and so that its pipe never fills)."""
    assert process.stderr is not None
    for line in process.stderr:
        log.append(line.decode(errors="replace"))


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def start_ledgerdesk(env: dict[str, str], workers: int = 1) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    command = [sys.executable, "-m", "ledgerdesk", "serve", "--port", str(port)]
    return start([*command, "--workers", str(workers)], port, env, workers), port


def start_yardstick(module: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    """One of the bench's own ASGI apps (``module:app``) under uvicorn."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", f"{module}:app", "--app-dir", str(HERE)]
    return start([*command, "--port", str(port), *UVICORN], port, env), port


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
