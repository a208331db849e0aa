"""`make soak`: the CI load run and its checker, much larger, with faults interleaved.

A throwaway embedded PostgreSQL of its own (so that it can be restarted), a fresh
migrated database, uvicorn with 2 workers, and 64 clients making 12,800 calls between
them (about 5 minutes on a 2-core machine); after every 1,600 calls one fault in turn:
backends terminated, a worker killed, the whole server killed and started again,
PostgreSQL restarted. The checker looks at a snapshot every 400 calls while the clients
go on, and at the end at the database and the whole history. Like the tests, it is
bounded by calls, not by the clock: a slower machine takes longer and does the same.
Prints the figures; exits 1 on any invariant violation or unexpected answer.

    SOAK_CALLS=12800 SOAK_CLIENTS=64 SOAK_SEED=1 SOAK_WORKERS=2 make soak
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

FAULT_EVERY = 1600  # calls
SNAPSHOT_EVERY = 400  # calls


def fault_plan(
    calls: int, live: LiveServer, postgres: OwnPostgres, database_url: str
) -> list[Fault]:
    kinds = [
        ("pg_terminate_backend", faults.terminate_backends(database_url)),
        ("SIGKILL one worker", faults.kill_worker(live)),
        ("SIGKILL the server", faults.kill_server(live)),
        ("PostgreSQL restart", faults.restart_postgres(postgres)),
    ]
    count = max(calls // FAULT_EVERY - 1, len(kinds))
    every = calls // (count + 1)
    return [
        Fault(kinds[i % len(kinds)][0], (i + 1) * every, kinds[i % len(kinds)][1])
        for i in range(count)
    ]


async def soak(live: LiveServer, postgres: OwnPostgres, database_url: str) -> LoadReport:
    clients = int(os.environ.get("SOAK_CLIENTS", "64"))
    calls = int(os.environ.get("SOAK_CALLS", "12800"))
    engine = create_engine(database_url, pool_size=2)
    config = Config(
        clients=clients,
        calls_per_client=max(calls // clients, 1),
        seed=int(os.environ.get("SOAK_SEED", "1")),
        snapshot_every=SNAPSHOT_EVERY,
    )
    config.faults = fault_plan(config.calls, live, postgres, database_url)
    print(
        f"soak: {config.clients} clients making {config.calls} calls against {live.workers} "
        f"workers at {live.url}, {len(config.faults)} faults",
        flush=True,
    )
    watcher = checker.Watcher(engine)
    try:
        report = await run_load(live.url, config, watcher)
        report.retries = live.retries()
        report.server_errors = live.masked_errors()
        verdict = checker.check(
            await checker.read_snapshot(engine), report.history, previous=watcher.previous
        )
    finally:
        await engine.dispose()
    report.violations = watcher.violations + [str(v) for v in verdict.violations]
    report.checked = verdict.counts + watcher.counts
    report.snapshots, report.snapshots_missed = watcher.taken, watcher.missed
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
