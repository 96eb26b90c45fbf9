"""Separate machines on one host, for the tests of the production shape: each a network
namespace of its own (``ip netns``) joined to the host by a veth pair, reaching the
host's PostgreSQL and Redis through forwarders (socat) on the host's side of its link;
and the shipped deployment files (``deploy/``) read as systemd and HAProxy would.

Needs root, iproute2, socat and haproxy (``.ci/run`` installs them).
"""

from __future__ import annotations

import csv
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

DEPLOY = Path(__file__).parents[1] / "deploy"
TOOLS = ("ip", "socat", "haproxy")


def missing() -> str | None:
    """Why this host cannot make machines, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    absent = [tool for tool in TOOLS if shutil.which(tool) is None]
    return f"not installed: {', '.join(absent)}" if absent else None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@dataclass
class Machine:
    """One namespace: ``address`` is its own, ``gateway`` the host's side of its link."""

    name: str
    address: str
    gateway: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def popen(
        self, command: list[str], env: Mapping[str, str], log: Path
    ) -> subprocess.Popen[bytes]:
        with log.open("ab") as output:
            process = subprocess.Popen(
                ["ip", "netns", "exec", self.name, *command],
                env=dict(env),
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        self.processes.append(process)
        return process


@contextmanager
def machines(count: int, forward: Mapping[int, tuple[str, int]]) -> Iterator[list[Machine]]:
    """``count`` machines; ``forward``: port on each gateway -> the host's (host, port)."""
    tag = f"ld{os.getpid() % 100000}"
    made: list[Machine] = []
    forwarders: list[subprocess.Popen[bytes]] = []
    try:
        for n in range(1, count + 1):
            name, host_end, inside = f"{tag}m{n}", f"{tag}h{n}", f"{tag}n{n}"
            subnet = 100 + n
            machine = Machine(name, f"10.77.{subnet}.2", f"10.77.{subnet}.1")
            _ip("netns", "add", name)
            made.append(machine)
            _ip("link", "add", host_end, "type", "veth", "peer", "name", inside)
            _ip("link", "set", inside, "netns", name)
            _ip("addr", "add", f"{machine.gateway}/30", "dev", host_end)
            _ip("link", "set", host_end, "up")
            _ip("netns", "exec", name, "ip", "addr", "add", f"{machine.address}/30", "dev", inside)
            _ip("netns", "exec", name, "ip", "link", "set", inside, "up")
            _ip("netns", "exec", name, "ip", "link", "set", "lo", "up")
            _ip("netns", "exec", name, "ip", "route", "add", "default", "via", machine.gateway)
            for port, (host, target) in forward.items():
                forwarders.append(
                    subprocess.Popen(
                        [
                            "socat",
                            f"TCP-LISTEN:{port},bind={machine.gateway},fork,reuseaddr",
                            f"TCP:{host}:{target}",
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
        for machine in made:
            for port in forward:
                _wait_port(machine.gateway, port)
        yield made
    finally:
        for machine in made:
            for process in machine.processes:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        for forwarder in forwarders:
            forwarder.kill()
            forwarder.wait()
        for machine in made:
            subprocess.run(["ip", "netns", "delete", machine.name], capture_output=True)
        for n in range(1, count + 1):  # the host's ends go with their peers; in case
            subprocess.run(["ip", "link", "delete", f"{tag}h{n}"], capture_output=True)


def _wait_port(host: str, port: int, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


# -- the shipped deployment files -----------------------------------------------------


def environment_file(path: Path = DEPLOY / "ledgerdesk.env") -> dict[str, str]:
    """KEY=VALUE lines, as systemd's EnvironmentFile= reads them (no quotes used)."""
    found = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            found[key.strip()] = value.strip()
    return found


def exec_start(unit: Path, env: Mapping[str, str]) -> list[str]:
    """The unit's ExecStart= as systemd would run it: ``${NAME}`` from the environment,
    and the installed ``ledgerdesk`` being this checkout's."""
    line = next(
        line.partition("=")[2]
        for line in unit.read_text().splitlines()
        if line.startswith("ExecStart=")
    )
    words = [re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], word) for word in shlex.split(line)]
    assert words[0].endswith("/bin/ledgerdesk"), words
    return [sys.executable, "-m", "ledgerdesk", *words[1:]]


def wait_healthy(url: str, process: subprocess.Popen[bytes], seconds: float = 40) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert process.poll() is None, f"the server exited ({process.returncode})"
        assert time.monotonic() < deadline, f"{url} did not become ready"
        time.sleep(0.2)


@dataclass
class Haproxy:
    process: subprocess.Popen[bytes]
    socket_path: Path
    port: int

    def states(self) -> dict[str, str]:
        """Each server's status by name (UP, DOWN, ...), from the stats socket."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(self.socket_path))
            sock.sendall(b"show stat\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        rows = csv.DictReader(data.decode().lstrip("# ").splitlines())
        return {
            row["svname"]: row["status"].split()[0]
            for row in rows
            if row["pxname"] == "ledgerdesk" and row["svname"] not in ("BACKEND", "FRONTEND")
        }


@contextmanager
def haproxy(servers: list[str], port: int, directory: Path) -> Iterator[Haproxy]:
    """deploy/haproxy/haproxy.cfg as shipped, its addresses from the environment."""
    socket_path = directory / "haproxy.sock"
    env = {
        **os.environ,
        "LEDGERDESK_LISTEN": f"127.0.0.1:{port}",
        "LEDGERDESK_HAPROXY_SOCKET": str(socket_path),
        **{f"LEDGERDESK_APP{n}": server for n, server in enumerate(servers, start=1)},
    }
    config = DEPLOY / "haproxy" / "haproxy.cfg"
    check = subprocess.run(["haproxy", "-c", "-f", str(config)], env=env, capture_output=True)
    assert check.returncode == 0, check.stdout + check.stderr
    with (directory / "haproxy.log").open("ab") as log:
        process = subprocess.Popen(
            ["haproxy", "-db", "-f", str(config)], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        _wait_port("127.0.0.1", port)
        while not socket_path.exists():
            time.sleep(0.05)
        yield Haproxy(process, socket_path, port)
    finally:
        process.send_signal(signal.SIGUSR1)  # soft stop
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
