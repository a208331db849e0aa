"""What the figures were measured on."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

from db.engine import create_engine


def _first(path: str, prefix: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def cpu() -> str:
    model = _first("/proc/cpuinfo", "model name") or platform.processor() or "unknown CPU"
    return f"{os.cpu_count()} x {model}"


def memory() -> str:
    total = _first("/proc/meminfo", "MemTotal")
    return f"{int(total.split()[0]) / 1024**2:.1f} GiB" if total else "unknown"


def system() -> str:
    debian = Path("/etc/debian_version")
    name = f"Debian {debian.read_text().strip()}" if debian.exists() else platform.system()
    return f"{name}, Linux {platform.release()}, Python {platform.python_version()}"


def tool_version(*command: str) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=10)
    except OSError:
        return "not found"
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0].strip() if lines else "unknown"


async def postgres(database_url: str) -> dict[str, str]:
    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            version = str(await conn.scalar(text("SHOW server_version")))
            settings = {
                name: str(await conn.scalar(text(f"SHOW {name}")))
                for name in ("shared_buffers", "synchronous_commit", "fsync", "max_connections")
            }
            bindir = await conn.scalar(text("SELECT setting FROM pg_config WHERE name = 'BINDIR'"))
    finally:
        await engine.dispose()
    return {"version": version, "bindir": str(bindir), **settings}


_TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuSnapshot:
    at: float
    busy: float  # CPU-seconds the whole machine has been busy
    ours: float  # CPU-seconds of the bench's processes and PostgreSQL's, reaped ones too


class CpuAccount:
    """How much CPU other processes on the machine took while the bench measured.

    Ours are the descendants of `roots` (the bench and the postmaster): their own time
    and that of their reaped children (cutime/cstime). Everything else busy is theirs.
    """

    def __init__(self, roots: list[int]) -> None:
        self.roots = roots

    def snapshot(self) -> CpuSnapshot:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        ticks = [int(f) for f in fields]
        busy = sum(ticks) - ticks[3] - ticks[4]  # less idle and iowait
        return CpuSnapshot(time.monotonic(), busy / _TICK, self._ours() / _TICK)

    def _ours(self) -> int:
        stats: dict[int, tuple[int, int]] = {}  # pid: (ppid, ticks incl. reaped children)
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                text = (entry / "stat").read_text()
            except OSError:
                continue
            rest = text.rsplit(")", 1)[1].split()
            stats[int(entry.name)] = (int(rest[1]), sum(int(v) for v in rest[11:15]))
        children: dict[int, list[int]] = {}
        for pid, (ppid, _) in stats.items():
            children.setdefault(ppid, []).append(pid)
        total, todo = 0, [pid for pid in self.roots if pid in stats]
        while todo:
            pid = todo.pop()
            total += stats[pid][1]
            todo.extend(children.get(pid, []))
        return total

    def others_since(self, before: CpuSnapshot) -> float:
        """Other processes' CPU since `before`, as a fraction of one core."""
        now = self.snapshot()
        wall = max(now.at - before.at, 1e-9)
        return max(0.0, (now.busy - before.busy) - (now.ours - before.ours)) / wall
