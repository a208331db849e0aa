"""Optional: py-spy samples the server during one measurement (`--profile NAME`).

py-spy is not a dependency of the project: `.venv/bin/pip install py-spy` first.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

_LINE = re.compile(r" \(([^()]*?):\d+\)$")


@dataclass
class Recording:
    process: subprocess.Popen[bytes]
    output: Path


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
    return found


def start(pid: int, seconds: float, output: Path) -> Recording:
    process = subprocess.Popen(
        [
            py_spy(), "record", "--pid", str(pid), "--duration", str(round(seconds)),
            "--rate", "200", "--nonblocking", "--format", "raw", "--output", str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return Recording(process, output)


def finish(recording: Recording) -> str:
    recording.process.wait(timeout=120)
    return summary(recording.output.read_text())


def _frame(frame: str) -> str:
    """`name (path/file.py:123)` -> `name (file.py)`: one entry per function."""
    match = _LINE.search(frame)
    if not match:
        return frame.strip()
    return f"{frame[: match.start()].strip()} ({Path(match.group(1)).name})"


PROJECT = Path(__file__).resolve().parent.parent
OURS = frozenset({"bench", "db", "resolvers", "schema", "services"})


def package(frame: str) -> str:
    """Whose code a frame runs: an installed package (`sqlalchemy`), one of ours
    (`ours: resolvers`) or a module of the standard library (`stdlib: asyncio`). py-spy
    names files by their path below the sys.path entry they were found in."""
    match = _LINE.search(frame)
    if not match:
        return frame.strip()
    path = match.group(1)
    if "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    elif path.startswith("/") and Path(path).is_relative_to(PROJECT):
        path = str(Path(path).relative_to(PROJECT))
    top = path.split("/")[-1 if path.startswith("/") else 0].removesuffix(".py")
    if top in OURS:
        return f"ours: {top}"
    if top in sys.stdlib_module_names:
        return f"stdlib: {top}"
    return top


def summary(collapsed: str, top: int = 25) -> str:
    """Self samples by package, then the functions with the most samples: inclusive (on
    the stack) and self (on top)."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        raw = stack.split(";")
        frames = [_frame(f) for f in raw]
        for name in set(frames):
            inclusive[name] += samples
        if frames:
            own[frames[-1]] += samples
            packages[package(raw[-1])] += samples
    if not total:
        return "py-spy took no samples"

    def table(counts: Counter[str], rows: int = top) -> list[str]:
        return [f"  {100 * n / total:5.1f}%  {name}" for name, n in counts.most_common(rows)]

    return "\n".join([
        f"{total} samples; self, by package:", *table(packages, 15),
        "inclusive:", *table(inclusive), "self:", *table(own),
    ])  # fmt: skip


if __name__ == "__main__":  # python -m bench.profile /tmp/bench-allocate-2.collapsed
    print(summary(Path(sys.argv[1]).read_text()))
