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


def summary(collapsed: str, top: int = 25) -> str:
    """The functions with the most samples: inclusive (on the stack) and self (on top)."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = [_frame(f) for f in stack.split(";")[1:]]  # [0] names the process
        for name in set(frames):
            inclusive[name] += samples
        if frames:
            own[frames[-1]] += samples
    if not total:
        return "py-spy took no samples"

    def table(counts: Counter[str]) -> list[str]:
        return [f"  {100 * n / total:5.1f}%  {name}" for name, n in counts.most_common(top)]

    return "\n".join([f"{total} samples; inclusive:", *table(inclusive), "self:", *table(own)])
