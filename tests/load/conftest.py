"""The live server for the load tests, and their figures at the end of the pytest run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.load import checker
from tests.load.server import LiveServer
from tests.load.workload import Config, LoadReport, run_load

# Each load run's summary, printed after the tests (see pytest_terminal_summary).
REPORTS: list[str] = []


@pytest.fixture(scope="package")
def live(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """uvicorn with 2 workers on the run's database, shared by the tests in tests/load (one
    that kills it starts it again). Each test that uses it empties the tables first, as
    every database test does."""
    log = tmp_path_factory.mktemp("server") / "server.log"
    with LiveServer(database_url, log, workers=2) as server:
        yield server


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if REPORTS:
        terminalreporter.section("load runs (tests/load)")
        for report in REPORTS:
            terminalreporter.write_line(report)


async def load_and_check(
    live: LiveServer, engine: AsyncEngine, config: Config, title: str
) -> LoadReport:
    """Run the load with the checker watching snapshots on the way, count the retries in
    the server's log, run the checker on the end state and the whole history, report."""
    retries_before, log_before = live.retries(), live.log_size()
    watcher = checker.Watcher(engine)
    report = await run_load(live.url, config, watcher)
    report.retries = live.retries() - retries_before
    report.server_errors = live.masked_errors(since=log_before)
    # The end state is compared with the last snapshot of the run, as well.
    verdict = checker.check(
        await checker.read_snapshot(engine), report.history, previous=watcher.previous
    )
    report.violations = watcher.violations + [str(v) for v in verdict.violations]
    report.checked = verdict.counts + watcher.counts
    report.snapshots, report.snapshots_missed = watcher.taken, watcher.missed
    REPORTS.append(f"{title}:\n{report.summary()}")
    return report
