"""`make mutation`: mutmut over services/domain/ with the unit tests, then the score.

Fails when fewer than MINIMUM of the mutants are killed, when a mutant survives that
docs/mutation-equivalents.md does not list, or when that list names a mutant that no
longer survives (it is stale, and a real survivor could hide behind a stale name).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTMUT = Path(sys.executable).parent / "mutmut"
EQUIVALENTS = ROOT / "docs" / "mutation-equivalents.md"
LOG = ROOT / "mutants" / "mutmut-run.log"
MINIMUM = 0.95

_RESULT = re.compile(r"^\s*(?P<name>\S+__mutmut_\d+): (?P<status>.+?)\s*$")
_LISTED = re.compile(r"`(services\.domain\.\S+__mutmut_\d+)`")


def mutmut(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(MUTMUT), *args], cwd=ROOT, capture_output=True, text=True, check=False
    )


def statuses(results: str) -> dict[str, str]:
    """Mutant name -> status ("killed", "survived", "no tests", ...) from `mutmut results`."""
    found = {}
    for line in results.splitlines():
        match = _RESULT.match(line)
        if match:
            found[match["name"]] = match["status"]
    return found


def listed_equivalents(text: str) -> set[str]:
    return set(_LISTED.findall(text))


def verdict(by_mutant: dict[str, str], equivalents: set[str]) -> tuple[list[str], int]:
    """The report's lines and the exit status."""
    total = len(by_mutant)
    killed = sum(1 for status in by_mutant.values() if status == "killed")
    not_killed = {name: status for name, status in by_mutant.items() if status != "killed"}
    score = killed / total if total else 0.0
    counts = ", ".join(f"{n} {status}" for status, n in sorted(Counter(by_mutant.values()).items()))
    lines = [
        f"mutation score: {killed} / {total} killed ({score:.1%}); {counts}",
        f"listed as equivalent in {EQUIVALENTS.relative_to(ROOT)}: {len(equivalents)}",
    ]
    failed = False
    unlisted = sorted(set(not_killed) - equivalents)
    if unlisted:
        failed = True
        lines.append("not killed and not listed as equivalent (see `mutmut show NAME`):")
        lines += [f"  {name}: {not_killed[name]}" for name in unlisted]
    stale = sorted(equivalents - set(not_killed))
    if stale:
        failed = True
        lines.append("listed as equivalent but killed or gone (update the list):")
        lines += [f"  {name}: {by_mutant.get(name, 'no such mutant')}" for name in stale]
    if score < MINIMUM:
        failed = True
        lines.append(f"the score is below {MINIMUM:.0%}")
    if not total:
        failed = True
        lines.append("mutmut reported no mutants")
    return lines, int(failed)


def main() -> int:
    run = mutmut("run")
    # mutmut draws a progress spinner; keep it out of the terminal and CI's log.
    LOG.parent.mkdir(exist_ok=True)
    LOG.write_text(run.stdout + run.stderr)
    if run.returncode != 0:
        print(f"mutmut run failed ({run.returncode}); the end of {LOG.relative_to(ROOT)}:")
        print((run.stdout + run.stderr)[-3000:])
        return 1
    results = mutmut("results", "--all", "true")
    if results.returncode != 0:
        print(results.stdout + results.stderr)
        return 1
    lines, status = verdict(statuses(results.stdout), listed_equivalents(EQUIVALENTS.read_text()))
    print("\n".join(lines))
    return status


if __name__ == "__main__":
    sys.exit(main())
