"""Starting and stopping the servers the benchmarks compare, on loopback."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
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


def start(command: list[str], port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Run ``command`` and wait until ``port`` accepts connections."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                time.sleep(0.5)  # let every worker finish its start-up
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    error = process.stderr.read().decode() if process.stderr else ""
    raise SystemExit(f"{command} did not start on {port}:\n{error}")


def start_ledgerdesk(env: dict[str, str], workers: int = 1) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    command = [sys.executable, "-m", "ledgerdesk", "serve", "--port", str(port)]
    return start([*command, "--workers", str(workers)], port, env), port


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
