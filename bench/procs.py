"""Processes the bench starts: CPU pinning, the server, wrk and pgbench.

How the cores are shared (with two or more CPUs): the process under test (the server,
the plain-asyncpg floor, or pgbench's client) gets the first CPU to itself; PostgreSQL,
wrk and the bench's own process share the second. With one CPU nothing is pinned.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.config import LUA, ROOT

_CPUS = sorted(os.sched_getaffinity(0))
PINNED = len(_CPUS) >= 2
PRIORITY = -10  # nice: other processes of the machine get less of the CPU while we measure
UNDER_TEST = {_CPUS[0]} if PINNED else set(_CPUS)
THE_REST = {_CPUS[1]} if PINNED else set(_CPUS)


def sharing() -> str:
    if not PINNED:
        return "one CPU: nothing pinned, everything shares it"
    return (
        f"CPU {_CPUS[0]}: the process under test alone (the uvicorn server, the "
        f"plain-asyncpg floor or pgbench's client); CPU {_CPUS[1]}: PostgreSQL (every "
        "backend), wrk and the bench's own process"
    )


def pin_rest_here() -> None:
    """Pin this process (and so wrk, which it starts) to THE_REST, and
    raise its priority (inherited too) where allowed, so that other work on a shared
    machine disturbs the measurements less."""
    os.sched_setaffinity(0, THE_REST)
    with contextlib.suppress(PermissionError):
        os.setpriority(os.PRIO_PROCESS, 0, PRIORITY)


def adopt(root: int) -> None:
    """Give a process tree we started, but that was launched in a way that reset them
    (pgserver starts PostgreSQL as another user), THE_REST and our priority. Processes
    it starts later inherit both from it."""
    for pid in descendants(root):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.sched_setaffinity(pid, THE_REST)
            os.setpriority(os.PRIO_PROCESS, pid, os.getpriority(os.PRIO_PROCESS, 0))


def descendants(root: int) -> list[int]:
    """root and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def priority() -> str:
    niceness = os.getpriority(os.PRIO_PROCESS, 0)
    return f"every process of the bench runs at nice {niceness}" + (
        "" if niceness == PRIORITY else f" (nice {PRIORITY} was not allowed)"
    )


def pin_under_test(pid: int) -> None:
    # Threads made later (uvicorn, asyncpg, pgbench -j) inherit it.
    with contextlib.suppress(ProcessLookupError):
        os.sched_setaffinity(pid, UNDER_TEST)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def peak_rss_mib(pid: int) -> float:
    """VmHWM: the most resident memory the process has had, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str) -> str:
        with urllib.request.urlopen(self.url + path, timeout=5) as response:
            body: bytes = response.read()
            return body.decode()

    def post(self, path: str, payload: dict[str, Any]) -> str:
        request = urllib.request.Request(
            self.url + path,
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            body: bytes = response.read()
            return body.decode()

    def retries(self) -> int:
        """services.retry.retry_count in the server's processes, from GET /metrics (with
        several workers, each answers for itself: the bench reads it with one)."""
        for line in self.get("/metrics").splitlines():
            if line.startswith("allocation_internal_retries_total "):
                return int(line.split()[1])
        raise RuntimeError("no allocation_internal_retries_total in /metrics")

    def peak_rss_mib(self) -> float:
        return peak_rss_mib(self.process.pid)

    def cpu_seconds(self) -> float:
        """CPU time the server's processes have used (user + system), its workers too."""
        total = 0
        for pid in descendants(self.process.pid):
            with contextlib.suppress(OSError):
                rest = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(rest[11]) + int(rest[12])
        return total / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def server(database_url: str, log: Path, *, workers: int = 1) -> Iterator[Server]:
    """The real server (`python -m schema.serve`) on a free port; stopped afterwards.

    One worker is pinned to the core under test. Several (WORKERS) are not pinned: with
    two cores they share both with PostgreSQL and wrk, which shows that nothing breaks
    with several processes rather than what they would gain on a larger machine."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "AUTH": "open",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "LOAD_DEMO_DATA": "false",
        "LOG_LEVEL": "warning",
        "GRAPHIQL": "false",
        "METRICS": "true",
        "WORKERS": str(workers),
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "schema.serve"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    if workers == 1:
        pin_under_test(process.pid)
    running = Server(process, port, log)
    try:
        _wait_until_up(running)
        yield running
    finally:
        stop(process)


def _wait_until_up(running: Server) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            break
        try:
            running.get("/healthz")
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the server did not come up; its log:\n{running.log.read_text()[-3000:]}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run(command: Sequence[str], *, under_test: bool = False, timeout: float = 900) -> str:
    """Run a command to its end (killed if the bench is interrupted); its stdout."""
    process = subprocess.Popen(
        list(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    if under_test:
        pin_under_test(process.pid)
    try:
        out, err = process.communicate(timeout=timeout)
    except BaseException:
        process.kill()
        process.wait()
        raise
    if process.returncode != 0:
        raise RuntimeError(
            f"{command[0]} failed ({process.returncode}):\n{err.decode()[-3000:]}"
            f"\n{out.decode()[-2000:]}"
        )
    return out.decode()


def wrk(
    url: str, clients: int, seconds: float, body: Path, *orders: int, timeout_s: int = 10
) -> dict[str, Any]:
    """One wrk run (one thread, `clients` connections) with bench/load.lua; its figures.

    With orders (first, last) each request allocates the next order of that range."""
    mode = ["orders", str(body), *map(str, orders)] if orders else ["fixed", str(body)]
    duration = f"{max(1, round(seconds))}s"
    out = run(
        [
            "wrk", "-t1", f"-c{clients}", f"-d{duration}", f"--timeout={timeout_s}s",
            "-s", str(LUA), url, "--", *mode,
        ],
        timeout=seconds + 120,
    )  # fmt: skip
    for line in out.splitlines():
        if line.startswith("BENCH_RESULT "):
            result: dict[str, Any] = json.loads(line.removeprefix("BENCH_RESULT "))
            result["rate"] = result["ok"] / (result["duration_us"] / 1e6)
            return result
    raise RuntimeError(f"wrk printed no result:\n{out}")
