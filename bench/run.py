"""`make bench` / `make bench-smoke`: measure, print the table, write docs/benchmarks.md.

    python -m bench                  the full run (about 6 minutes), writes the docs
    python -m bench --smoke          a few seconds at tiny sizes, for CI; writes nothing
    python -m bench --profile NAME   also py-spy the server during measurement NAME

Everything runs on an embedded PostgreSQL of its own (.pgdata/bench, deleted after).
Whatever the bench starts (PostgreSQL, the server, wrk, pgbench, the floor) is stopped
when it ends, fails or is interrupted (Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import make_url

from bench import data, machine, procs, profile, report, statements
from bench.config import DOCS, FULL, SMOKE, Sizes
from bench.queries import ALLOCATE, ORDER_PAGE, ORDER_SCREEN, body, write_body
from db.embedded import DATA_ROOT, embedded_postgres
from db.engine import create_engine

PROFILES = ("allocate-2", "allocate-20", "uncontended-1", "hot", "order", "page", "large")


def log(message: str) -> None:
    print(f"[bench {time.monotonic() - _T0:6.1f}s] {message}", file=sys.stderr, flush=True)


_T0 = time.monotonic()


def _exit_on_sigterm(signum: int, frame: object) -> None:
    sys.exit(128 + signum)


@dataclass
class Bench:
    sizes: Sizes
    server_url: str
    tmp: Path
    profiled: str | None
    cpu: machine.CpuAccount
    result: report.Result = field(default_factory=report.Result)

    # --- helpers -------------------------------------------------------------------

    def engine_run(self, url: str, work: Any, *args: Any, **kwargs: Any) -> Any:
        """Run `work(engine, ...)` on a fresh engine of url, in its own event loop."""

        async def go() -> Any:
            engine = create_engine(url, pool_size=2)
            try:
                return await work(engine, *args, **kwargs)
            finally:
                await engine.dispose()

        return asyncio.run(go())

    def orders(self, url: str, count: int, lines: int, hot: bool = False) -> data.Orders:
        batch: data.Orders = self.engine_run(url, data.create_orders, count, lines, hot=hot)
        return batch

    def connection(self, url: str) -> dict[str, Any]:
        parsed = make_url(url)
        host = parsed.query.get("host")
        return {
            "host": host if isinstance(host, str) else parsed.host or "127.0.0.1",
            "port": parsed.port or 5432,
            "user": parsed.username or "postgres",
            "database": parsed.database,
        }

    # --- baselines -----------------------------------------------------------------

    def pgbench(self, bindir: str) -> None:
        sizes = self.sizes
        if not sizes.pgbench_seconds:
            return
        candidate = Path(bindir) / "pgbench"
        binary = str(candidate) if candidate.exists() else shutil.which("pgbench")
        if binary is None:
            self.result.notes.append("pgbench not found: no TPC-B-like baseline")
            return
        asyncio.run(data.admin(self.server_url, 'DROP DATABASE IF EXISTS "pgbench"'))
        asyncio.run(data.admin(self.server_url, 'CREATE DATABASE "pgbench"'))
        target = self.connection(data.database_url(self.server_url, "pgbench"))
        where = ["-h", target["host"], "-p", str(target["port"]), "-U", target["user"]]
        log(f"pgbench -i -s {sizes.pgbench_scale}")
        procs.run([binary, "-i", "-q", "-s", str(sizes.pgbench_scale), *where, "pgbench"])
        clients = sizes.clients
        log(f"pgbench TPC-B-like, {clients} clients, {sizes.pgbench_seconds} s")
        before = self.cpu.snapshot()
        out = procs.run(
            [binary, "-c", str(clients), "-j", "1", "-T", str(sizes.pgbench_seconds),
             *where, "pgbench"],
            under_test=True,
        )  # fmt: skip
        self.result.figures["pgbench"] = {
            "rate": _number(out, "tps = "),
            "latency": _number(out, "latency average = "),
            "scale": sizes.pgbench_scale,
            "version": machine.tool_version(binary, "--version"),
            "others": self.cpu.others_since(before),
        }
        asyncio.run(data.admin(self.server_url, 'DROP DATABASE "pgbench" WITH (FORCE)'))

    def floor(self, url: str, lines: int, count: int) -> dict[str, Any]:
        sizes = self.sizes
        batch = self.orders(url, count, lines)
        options = {
            "dsn": self.connection(url),
            "first": batch.first,
            "last": batch.last,
            "clients": sizes.clients,
            "seconds": sizes.floor_seconds,
            "warmup": sizes.warmup,
        }
        log(f"floor: plain asyncpg, {lines}-line orders, {sizes.clients} clients")
        before = self.cpu.snapshot()
        out = procs.run(
            [sys.executable, "-m", "bench.floor", json.dumps(options)],
            under_test=True,
            timeout=sizes.floor_seconds + sizes.warmup + 120,
        )
        figures: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        figures["others"] = self.cpu.others_since(before)
        if figures["exhausted"]:
            self.result.notes.append(f"the {lines}-line floor ran out of orders early")
        self.result.figures[f"floor-{lines}"] = figures
        return figures

    # --- the server ----------------------------------------------------------------

    def allocations(
        self,
        url: str,
        running: procs.Server,
        name: str,
        *,
        lines: int,
        clients: int,
        expected_rate: float,
        hot: bool = False,
    ) -> dict[str, Any]:
        """Warm up, then measure allocateOrder on fresh orders; check what the DB says."""
        sizes = self.sizes
        body = write_body(self.tmp / "allocate.json", ALLOCATE, id="__ID__")
        warm = self.orders(url, _enough(expected_rate, sizes.warmup, clients), lines, hot)
        _drain(
            procs.wrk(running.url + "/graphql", clients, sizes.warmup, body, warm.first, warm.last)
        )
        batch = self.orders(
            url, max(sizes.min_orders, _enough(expected_rate, sizes.seconds, clients)), lines, hot
        )
        log(f"server: {name}, {clients} clients, {sizes.seconds} s")
        retries_before = running.retries()
        recording = self.start_profile(name, running)
        before, cpu = self.cpu.snapshot(), running.cpu_seconds()
        figures = procs.wrk(
            running.url + "/graphql", clients, sizes.seconds, body, batch.first, batch.last
        )
        figures["others"] = self.cpu.others_since(before)
        figures["cpu_ms"] = 1000 * (running.cpu_seconds() - cpu) / max(1, figures["ok"])
        self.finish_profile(recording, name)
        figures["retries"] = running.retries() - retries_before
        done = self.engine_run(url, data.allocated, batch)
        figures["allocated_in_db"] = done
        self.check(name, figures, done, clients, contended=hot)
        return figures

    def check(
        self, name: str, figures: dict[str, Any], done: int, clients: int, *, contended: bool
    ) -> None:
        problems = self.result.problems
        if figures["exhausted"]:
            problems.append(f"{name}: ran out of pre-made orders; the rate is over less time")
        if figures["ok"] == 0:
            problems.append(f"{name}: no successful request")
        bad = figures["failed"] + figures["bad_status"] + figures["socket_errors"]
        if bad or (figures["conflicts"] and not contended):
            problems.append(
                f"{name}: {bad} failed requests, {figures['conflicts']} VERSION_CONFLICTs"
            )
        # Requests still in flight when wrk stopped were finished by the server.
        if not figures["ok"] <= done <= figures["ok"] + figures["conflicts"] + clients:
            problems.append(f"{name}: wrk saw {figures['ok']} allocations, the database has {done}")

    def reads(self, running: procs.Server, numbers: list[str]) -> None:
        sizes = self.sizes
        for name, path, query, variables in (
            ("order", "order.json", ORDER_SCREEN, {"number": numbers[0]}),
            ("page", "page.json", ORDER_PAGE, {"first": sizes.read_orders}),
        ):
            body = write_body(self.tmp / path, query, **variables)
            clients = sizes.read_clients
            _drain(procs.wrk(running.url + "/graphql", clients, sizes.warmup, body, timeout_s=60))
            log(f"server: read {name}, {clients} clients, {sizes.read_seconds} s")
            recording = self.start_profile(name, running)
            before, cpu = self.cpu.snapshot(), running.cpu_seconds()
            figures = procs.wrk(
                running.url + "/graphql", clients, sizes.read_seconds, body, timeout_s=60
            )
            figures["others"] = self.cpu.others_since(before)
            figures["cpu_ms"] = 1000 * (running.cpu_seconds() - cpu) / max(1, figures["ok"])
            self.finish_profile(recording, name)
            if figures["failed"] or figures["bad_status"] or not figures["ok"]:
                self.result.problems.append(f"read {name}: {figures}")
            self.result.figures[name] = figures
            self.result.figures[f"{name}-floor"] = self.read_floor(running, name, query, variables)

    def read_floor(
        self, running: procs.Server, name: str, query: str, variables: dict[str, Any]
    ) -> dict[str, Any]:
        """graphql-core alone over the server's own answer, on the server's core."""
        answer = json.loads(running.post("/graphql", body(query, **variables)))
        options = self.tmp / f"{name}-floor.json"
        options.write_text(
            json.dumps(
                {"query": query, "variables": variables, "data": answer["data"],
                 "seconds": self.sizes.read_seconds / 2}
            )
        )  # fmt: skip
        log(f"floor: graphql-core over the {name} answer in memory")
        before = self.cpu.snapshot()
        out = procs.run(
            [sys.executable, "-m", "bench.read_floor", str(options)],
            under_test=True,
            timeout=self.sizes.read_seconds + 120,
        )
        figures: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        figures["others"] = self.cpu.others_since(before)
        return figures

    def start_profile(self, name: str, running: procs.Server) -> profile.Recording | None:
        if self.profiled != name:
            return None
        seconds = self.sizes.read_seconds if name in ("order", "page") else self.sizes.seconds
        return profile.start(running.process.pid, seconds, self.tmp / f"{name}.collapsed")

    def finish_profile(self, recording: profile.Recording | None, name: str) -> None:
        if recording is not None:
            self.result.profile = f"py-spy, {name}:\n" + profile.finish(recording)
            shutil.copy(recording.output, Path(tempfile.gettempdir()) / f"bench-{name}.collapsed")

    # --- the whole run -------------------------------------------------------------

    def run(self) -> report.Result:
        sizes, result = self.sizes, self.result
        start = self.cpu.snapshot()
        pg = asyncio.run(machine.postgres(self.server_url))
        result.machine = {
            "cpu": machine.cpu(),
            "memory": machine.memory(),
            "system": machine.system(),
            "postgres": f"PostgreSQL {pg['version']} (embedded, Unix socket; shared_buffers "
            f"{pg['shared_buffers']}, synchronous_commit {pg['synchronous_commit']}, fsync "
            f"{pg['fsync']}, max_connections {pg['max_connections']})",
            "wrk": machine.tool_version("wrk", "--version"),
            "sharing": f"{procs.sharing()}; {procs.priority()}",
        }
        self.pgbench(pg["bindir"])

        log(f"small database: {sizes.items} items, one balance each")
        small = asyncio.run(data.create_database(self.server_url, "bench"))
        self.engine_run(small, data.load_catalog, sizes.items, 1)
        self.engine_run(small, data.add_hot_item)
        numbers = self.engine_run(small, data.add_read_orders, sizes.read_orders, sizes.read_lines)
        small_numbers = self.engine_run(small, data.add_read_orders, sizes.read_orders, 2)
        asyncio.run(data.vacuum_analyze(self.server_url, "bench"))
        self.count_statements(small, numbers[0], small_numbers[0])

        log("server on the small database")
        with procs.server(small, self.tmp / "server.log") as running:
            # Each floor runs just before the server's measurement it is the floor of (the
            # server idle meanwhile): on a shared machine whose speed drifts, a ratio is
            # only as good as the closeness in time of its two measurements.
            floors: dict[int, dict[str, Any]] = {}
            for lines, count in ((2, sizes.floor_orders[0]), (20, sizes.floor_orders[1])):
                floors[lines] = self.floor(small, lines, count)
                asyncio.run(data.vacuum_analyze(self.server_url, "bench"))
                name = f"allocate-{lines}"
                result.figures[name] = self.allocations(
                    small, running, name, lines=lines, clients=sizes.clients,
                    expected_rate=floors[lines]["rate"],
                )  # fmt: skip
            floor2 = floors[2]
            for name, hot in (("uncontended-1", False), ("hot", True)):
                result.figures[name] = self.allocations(
                    small, running, name, lines=1, clients=sizes.hot_clients,
                    expected_rate=floor2["rate"] * 1.5, hot=hot,
                )  # fmt: skip
            self.reads(running, numbers)
            result.figures["rss"] = running.peak_rss_mib()
        for lines, figures in floors.items():
            service = result.figures[f"transaction-{lines}"]
            if figures["statements"] != [service]:  # reported, not a failure: CI is no gate
                result.notes.append(
                    f"the floor ran {figures['statements']} statements per {lines}-line order, "
                    f"the service {service}: bring bench/floor.py in line with "
                    "db/repositories.py"
                )

        log("server with WORKERS=2 on the small database")
        with procs.server(small, self.tmp / "server-2.log", workers=2) as running:
            result.figures["allocate-2-workers"] = self.allocations(
                small, running, "allocate-2-workers", lines=2, clients=sizes.clients,
                expected_rate=floor2["rate"],
            )  # fmt: skip

        self.large(floor2["rate"])
        result.figures["others-total"] = self.cpu.others_since(start)
        result.figures["wall"] = time.monotonic() - start.at
        return result

    def count_statements(self, url: str, big_order: str, small_order: str) -> None:
        sizes, figures = self.sizes, self.result.figures

        async def count() -> None:
            engine = create_engine(url, pool_size=1)
            try:
                two = await data.create_orders(engine, 3, 2)
                twenty = await data.create_orders(engine, 3, 20)
            finally:
                await engine.dispose()
            figures["transaction-2"] = await statements.allocate_transaction(url, two.first)
            figures["transaction-20"] = await statements.allocate_transaction(url, twenty.first)
            async with statements.in_process(url) as app:
                # Warm up first: a connection new to the pool runs set-up statements.
                for _ in range(2):
                    await app.allocate(two.first + 1)
                    await app.allocate(twenty.first + 1)
                    await app.order(big_order)
                    await app.order(small_order)
                    await app.page(sizes.read_orders)
                figures["request-2"] = await app.allocate(two.last)
                figures["request-20"] = await app.allocate(twenty.last)
                figures["order-20"] = await app.order(big_order)
                figures["order-2"] = await app.order(small_order)
                figures["page-big"] = await app.page(sizes.read_orders)
                figures["page-small"] = await app.page(min(5, sizes.read_orders))

        log("statements per request, in-process")
        asyncio.run(count())
        for big, small in (("order-20", "order-2"), ("page-big", "page-small")):
            if figures[big].statements != figures[small].statements:  # a target, not a gate
                self.result.notes.append(
                    f"reads are not constant in statements: {big} {figures[big]}, "
                    f"{small} {figures[small]}"
                )

    def large(self, expected_rate: float) -> None:
        sizes, result = self.sizes, self.result
        balances = sizes.large_items * sizes.large_balances_per_item
        log(f"large database: {balances} balances, {sizes.large_orders} orders")
        url = asyncio.run(data.create_database(self.server_url, "bench_large"))
        self.engine_run(url, data.load_catalog, sizes.large_items, sizes.large_balances_per_item)
        self.engine_run(url, data.add_history, sizes.large_orders)
        asyncio.run(data.vacuum_analyze(self.server_url, "bench_large"))
        log("server on the large database")
        with procs.server(url, self.tmp / "server-large.log") as running:
            result.figures["large"] = self.allocations(
                url, running, "large", lines=2, clients=sizes.clients, expected_rate=expected_rate
            )
            result.figures["rss-large"] = running.peak_rss_mib()
        result.figures["large-balances"] = balances


def _drain(warmup: dict[str, Any]) -> None:
    """Let the server finish what the warm-up left in flight (wrk does not wait for it):
    at most `clients` requests, done within about the warm-up's p99 latency."""
    time.sleep(min(10.0, warmup["p99_us"] / 1e6 + 0.2))


def _enough(rate: float, seconds: float, clients: int) -> int:
    """Orders for `seconds` at up to 1.5 times `rate`, and a margin."""
    return math.ceil(rate * 1.5 * (seconds + 1)) + 4 * clients


def _number(text: str, after: str) -> float:
    for line in text.splitlines():
        if line.startswith(after):
            return float(line.removeprefix(after).split()[0])
    raise RuntimeError(f"no {after!r} in:\n{text}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, a few seconds")
    parser.add_argument("--profile", choices=PROFILES, help="py-spy the server during NAME")
    parser.add_argument("--output", type=Path, default=DOCS, help="the Markdown file to update")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    sizes = SMOKE if args.smoke else FULL
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    if shutil.which("wrk") is None:
        raise SystemExit("the bench needs wrk: apt-get install -y wrk")
    if args.profile:
        profile.py_spy()
    procs.pin_rest_here()
    name = f"bench-{sizes.name}"
    with (
        tempfile.TemporaryDirectory(prefix="bench-") as tmp,
        embedded_postgres(name, throwaway=True) as server_url,
    ):
        postmaster = int((DATA_ROOT / name / "postmaster.pid").read_text().split()[0])
        procs.adopt(postmaster)
        cpu = machine.CpuAccount([os.getpid(), postmaster])
        result = Bench(sizes, server_url, Path(tmp), args.profile, cpu).run()
    result.sizes = sizes
    text = report.render(result)
    print(text)
    if result.profile:
        print("\n" + result.profile)
    if sizes is FULL and not args.no_write:
        report.write(args.output, text)
        log(f"wrote {args.output}")
    if result.problems:
        print("\nPROBLEMS:\n" + "\n".join(f"- {p}" for p in result.problems), file=sys.stderr)
        sys.exit(1)
    log("done")
