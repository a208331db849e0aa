"""`make soak`: the CI load run and its checker, larger and longer, with faults interleaved.

A throwaway embedded PostgreSQL of its own (so that it can be restarted), a fresh
migrated database, uvicorn with 2 workers, and 64 clients for 5 minutes; every 30 s
one fault in turn: backends terminated, a worker killed, the whole server killed and
started again, PostgreSQL restarted. Then the checker reads the database. Prints the
figures; exits 1 on any invariant violation or unexpected answer.

    SOAK_SECONDS=300 SOAK_CLIENTS=64 SOAK_SEED=1 SOAK_WORKERS=2 make soak
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

from db.engine import create_engine
from tests.load import checker, faults
from tests.load.server import LiveServer, OwnPostgres, fresh_database, own_postgres
from tests.load.workload import Config, Fault, LoadReport, run_load


def fault_plan(
    seconds: float, live: LiveServer, postgres: OwnPostgres, database_url: str
) -> list[Fault]:
    kinds = [
        ("pg_terminate_backend", faults.terminate_backends(database_url)),
        ("SIGKILL one worker", faults.kill_worker(live)),
        ("SIGKILL the server", faults.kill_server(live)),
        ("PostgreSQL restart", faults.restart_postgres(postgres)),
    ]
    count = max(int(seconds // 30) - 1, len(kinds))
    return [
        Fault(kinds[i % len(kinds)][0], (i + 1) / (count + 1), kinds[i % len(kinds)][1])
        for i in range(count)
    ]


async def soak(live: LiveServer, postgres: OwnPostgres, database_url: str) -> LoadReport:
    seconds = float(os.environ.get("SOAK_SECONDS", "300"))
    config = Config(
        clients=int(os.environ.get("SOAK_CLIENTS", "64")),
        max_ops=10**9,  # bounded by time
        seconds=seconds,
        seed=int(os.environ.get("SOAK_SEED", "1")),
        faults=fault_plan(seconds, live, postgres, database_url),
    )
    print(
        f"soak: {config.clients} clients for {seconds:.0f} s against {live.workers} workers "
        f"at {live.url}, {len(config.faults)} faults",
        flush=True,
    )
    report = await run_load(live.url, config)
    report.retries = live.retries()
    report.server_errors = live.masked_errors()
    engine = create_engine(database_url, pool_size=1)
    try:
        verdict = checker.check(await checker.read_snapshot(engine), report.history)
    finally:
        await engine.dispose()
    report.violations = [str(v) for v in verdict.violations]
    report.checked = verdict.counts
    return report


def main() -> int:
    workers = int(os.environ.get("SOAK_WORKERS", "2"))
    with (
        tempfile.TemporaryDirectory(prefix="soak-") as scratch,
        own_postgres("soak") as postgres,
        fresh_database(postgres.url, "soak") as url,
        LiveServer(url, Path(scratch) / "server.log", workers=workers) as live,
    ):
        report = asyncio.run(soak(live, postgres, url))
        print(report.summary())
        failed = bool(report.violations or report.unexpected)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
