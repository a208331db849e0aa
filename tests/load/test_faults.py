"""Faults under load, with the checker on snapshots during the run and at its end: backends
killed, the API process killed with SIGKILL, PostgreSQL restarted. Nothing half-written
may survive, and the server must serve again by itself (the summary says how soon).

Each fault strikes after a given number of calls, and every run ends when its clients
have made all theirs, so a slow machine cannot leave a fault out or cut a run short.

The restart needs a PostgreSQL of the test's own (the rest of the suite shares the
run's server), so that test starts an embedded one in every configuration.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from db.engine import create_engine
from tests.load import faults
from tests.load.conftest import load_and_check
from tests.load.server import LiveServer, OwnPostgres, fresh_database, own_postgres
from tests.load.workload import READING_THE_PAYLOAD, Config, Fault, LoadReport, Outcome

CLIENTS, CALLS_PER_CLIENT, SNAPSHOT_EVERY = 32, 6, 24  # 192 calls, a snapshot every 24


def config(seed: int, *faults: Fault) -> Config:
    return Config(
        clients=CLIENTS,
        calls_per_client=CALLS_PER_CLIENT,
        seed=seed,
        faults=faults,
        snapshot_every=SNAPSHOT_EVERY,
    )


def assert_ran_to_the_end(report: LoadReport) -> None:
    """Every planned call was made, every fault struck, and each planned snapshot was
    either checked or missed for want of a database (never skipped)."""
    assert report.calls == report.config.calls, report.summary()
    assert [f.name for f in report.faults] == [f.name for f in report.config.faults]
    planned = len(range(SNAPSHOT_EVERY, report.config.calls, SNAPSHOT_EVERY))
    assert len(report.snapshots) + len(report.snapshots_missed) == planned, report.summary()
    assert report.snapshots, report.summary()


def unavailable(report: LoadReport) -> int:
    """Answers that said UNAVAILABLE: in a mutation's payload, or a query's extensions."""
    mutations = [
        op
        for op in report.mutations(Outcome.UNKNOWN)
        if op.code is not None and op.code.startswith("UNAVAILABLE")
    ]
    return len(mutations) + report.queries["UNAVAILABLE"]


def assert_unavailable_in_payloads(report: LoadReport) -> None:
    """A mutation caught by a lost connection says UNAVAILABLE in its payload's errors
    (README, "Lost connections"), also when the change was committed and reading its
    result failed. Only a nested object of the payload, which GraphQL resolves after
    the mutation has answered, may carry UNAVAILABLE as a GraphQL error on its path;
    never the mutation's own field."""
    codes = {op.code for op in report.mutations(Outcome.UNKNOWN)}
    assert codes <= {"UNAVAILABLE", READING_THE_PAYLOAD}, report.summary()


def assert_keyed_calls_learnt_their_outcome(report: LoadReport) -> None:
    """A client that sends its mutations with an Idempotency-Key and sends each again
    after a lost answer always learns whether it was applied (and the checker's
    APPLIED_TWICE, that it was applied once)."""
    assert report.keyed(), report.summary()
    assert [op for op in report.keyed() if op.outcome is Outcome.UNKNOWN] == [], report.summary()


def assert_recovered(report: LoadReport) -> None:
    """After every fault a mutation succeeded again before the run ended, with no
    restart or other step on our part. How soon is in the summary, not asserted:
    a wall-clock bound would fail on a busy shared machine, not on a broken server."""
    for event in report.faults:
        assert event.recovered_after is not None, report.summary()


async def test_killed_backends_give_unavailable_and_the_server_recovers_by_itself(
    live: LiveServer, engine: AsyncEngine, database_url: str
) -> None:
    supervisor, workers = live.process, live.worker_pids()
    kill = faults.terminate_backends(database_url)
    plan = config(4, *(Fault("pg_terminate_backend", calls, kill) for calls in (48, 96, 144)))

    report = await load_and_check(live, engine, plan, "fault (a): backends terminated x3")

    assert report.violations == [], report.summary()
    assert_ran_to_the_end(report)
    assert_keyed_calls_learnt_their_outcome(report)
    # Never "Unexpected error.": every request caught got UNAVAILABLE, and nothing else
    # failed for want of an answer (the server itself never went away).
    assert report.unexpected == [], report.summary()
    assert_unavailable_in_payloads(report)
    assert unavailable(report) > 0, report.summary()
    assert_recovered(report)
    # No restart: the same processes serve on.
    assert (live.process, live.worker_pids()) == (supervisor, workers)


async def test_a_server_killed_with_sigkill_mid_load_leaves_nothing_half_done(
    live: LiveServer, engine: AsyncEngine, database_url: str
) -> None:
    # The server first: while it is down no call completes, so the worker (whose
    # fault lasts until another has started in its place) is still killed under load.
    # It strikes while mutations of both kinds are held inside the server.
    kill_server = faults.with_mutations_held(database_url, faults.kill_server(live))
    plan = config(
        5,
        Fault("SIGKILL the server", 48, kill_server),
        Fault("SIGKILL one worker", 120, faults.kill_worker(live)),
    )
    log_before = live.log_size()

    report = await load_and_check(live, engine, plan, "fault (b): API processes killed")

    assert report.violations == [], report.summary()
    assert report.unexpected == [], report.summary()
    assert_ran_to_the_end(report)
    assert_keyed_calls_learnt_their_outcome(report)
    # A worker (not some other child of the supervisor) died, and the supervisor said so
    # before it started another in its place.
    killed = report.faults[1].detail.split()[1]
    died = re.findall(r"Child process \[(\d+)\] died", live.log_text(since=log_before))
    assert died == [killed], (died, report.summary())
    # Requests were cut off in flight: their outcome is unknown to the client, and the
    # checker found each either wholly applied or not at all.
    # The database stayed up: no UNAVAILABLE, only requests cut off with their process.
    cut_off = report.mutations(Outcome.UNKNOWN)
    assert cut_off, report.summary()
    assert all((op.code or "").startswith("transport:") for op in cut_off), report.summary()
    # Keyed calls were cut off too, and sent again until they were answered.
    assert report.resent["connection cut"] > 0, report.summary()
    assert_recovered(report)


@pytest.fixture(scope="module")
def own_database() -> Iterator[tuple[OwnPostgres, str]]:
    with own_postgres("load-restart") as postgres, fresh_database(postgres.url, "load") as url:
        yield postgres, url


async def test_postgres_restarted_under_load_is_unavailable_for_a_moment_then_serves(
    own_database: tuple[OwnPostgres, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    postgres, url = own_database
    log = tmp_path_factory.mktemp("restart") / "server.log"
    engine = create_engine(url, pool_size=1)
    try:
        with LiveServer(url, log, workers=2) as live:
            plan = config(6, Fault("PostgreSQL restart", 80, faults.restart_postgres(postgres)))
            report = await load_and_check(live, engine, plan, "fault (c): PostgreSQL restarted")
    finally:
        await engine.dispose()

    assert report.violations == [], report.summary()
    assert report.unexpected == [], report.summary()
    assert_ran_to_the_end(report)
    assert_keyed_calls_learnt_their_outcome(report)
    assert_unavailable_in_payloads(report)
    assert unavailable(report) > 0, report.summary()
    assert_recovered(report)
