"""WORKERS=2: `python -m schema.serve` runs two worker processes on one port, each with
its own pool, and both serve; SIGTERM stops them all."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from bench.procs import descendants
from resolvers.ids import to_global_id
from services.ports import UnitOfWorkFactory
from tests.load.server import ROOT, free_port
from tests.service import helpers

ALLOCATE = """mutation($id: ID!) { allocateOrder(id: $id) {
  salesOrder { status } allocations { quantity } errors { code } } }"""


async def _until_up(http: httpx.AsyncClient, server: subprocess.Popen[bytes]) -> None:
    """Polls /healthz while the server starts: a guard against a hang (generous, as a
    machine shared with other test runs may be slow), not a timing."""
    for _ in range(3000):
        assert server.poll() is None, "the server exited while starting"
        try:
            if (await http.get("/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("the server did not come up")


async def test_two_workers_serve_on_one_port_and_stop_together(
    database_url: str, uow: UnitOfWorkFactory, tmp_path: Path
) -> None:
    await helpers.one_balance(uow, 100)
    order_ids = [await helpers.order(uow, ("WIDGET", 1)) for _ in range(24)]
    port = free_port()
    env = {
        **os.environ, "DATABASE_URL": database_url, "PORT": str(port), "WORKERS": "2",
        "LOAD_DEMO_DATA": "false", "GRAPHIQL": "false", "LOG_LEVEL": "warning", "AUTH": "open",
    }  # fmt: skip
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(  # noqa: ASYNC220 - a real server, watched by polling
        [sys.executable, "-m", "schema.serve"], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            await _until_up(http, server)
            workers = [pid for pid in descendants(server.pid) if pid != server.pid]
            answers = await asyncio.gather(
                *(
                    http.post("/graphql", json={"query": ALLOCATE, "variables": {"id": gid}})
                    for gid in (to_global_id("SalesOrder", i) for i in order_ids)
                )
            )
        assert len(workers) >= 2, f"worker processes: {workers}"
        payloads = [a.json()["data"]["allocateOrder"] for a in answers]
        assert {a.status_code for a in answers} == {200}
        allocated = {"salesOrder": {"status": "ALLOCATED"}, "allocations": [{"quantity": 1}]}
        assert payloads == [{**allocated, "errors": []}] * len(order_ids)
    finally:
        server.send_signal(signal.SIGTERM)
        exit_code = server.wait(timeout=60)
        log.close()
    assert exit_code in (0, 128 + signal.SIGTERM), (tmp_path / "server.log").read_text()
    assert await _all_gone(workers), {pid: _cmdline(pid) for pid in workers}


async def _all_gone(pids: list[int]) -> bool:
    """Whether the processes end (or are left exited, not yet reaped): polled for a while,
    as the ones the supervisor does not wait for (multiprocessing's resource tracker)
    end on their own when it has gone."""
    for _ in range(300):
        if all(_state(pid) in (None, "Z") for pid in pids):
            return True
        await asyncio.sleep(0.1)
    return False


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return "gone"


def _state(pid: int) -> str | None:
    """The process's state letter (Z: exited, not yet reaped), or None once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None
