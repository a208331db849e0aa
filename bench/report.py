"""The table: printed, and written between the markers of docs/benchmarks.md."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.config import FULL, Sizes

BEGIN = "<!-- bench:begin (written by `make bench`; edit outside these markers) -->"
END = "<!-- bench:end -->"


@dataclass
class Result:
    figures: dict[str, Any] = field(default_factory=dict)
    machine: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    profile: str = ""
    sizes: Sizes = FULL


@dataclass(frozen=True)
class Target:
    goal: str
    measured: str
    met: bool | None  # None: not measured


def _rate(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 10 else f"{value:.2g}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def _row(what: str, clients: int | None, figures: dict[str, Any] | None, notes: str) -> str:
    if figures is None:
        return f"| {what} | {clients or ''} | - | - | - | - | not measured | |"
    if "p50_us" in figures:  # wrk
        p50, p99 = figures["p50_us"] / 1000, figures["p99_us"] / 1000
    else:
        p50, p99 = figures.get("p50_ms"), figures.get("p99_ms")
    return (
        f"| {what} | {clients or ''} | {_rate(figures.get('rate'))} | {_ms(p50)} | {_ms(p99)} "
        f"| {_ms(figures.get('cpu_ms'))} | {notes} | {_others(figures)} |"
    )


def _others(figures: dict[str, Any]) -> str:
    """Other processes' CPU during the measurement, in % of one core."""
    return f"{100 * figures['others']:.0f}%" if "others" in figures else ""


def _power(n: int) -> str:
    exponent = len(str(n)) - 1
    return f"10^{exponent}" if n == 10**exponent else f"{n:,}"


def rows(result: Result) -> list[str]:
    f, sizes = result.figures, result.sizes
    c, hc, rc = sizes.clients, sizes.hot_clients, sizes.read_clients
    out = [
        "| measurement | clients | req/s | p50 ms | p99 ms | CPU ms/req | notes | others' CPU |",
        "| --- | --: | --: | --: | --: | --: | --- | --: |",
    ]
    pg = f.get("pgbench")
    if pg:
        out.append(
            f"| pgbench built-in TPC-B-like (5 statements + BEGIN/END) | {c} "
            f"| {_rate(pg['rate'])} | - | - | - | scale {pg['scale']}; average latency "
            f"{pg['latency']:.1f} ms (pgbench gives no percentiles) | {_others(pg)} |"
        )
    for lines in (2, 20):
        floor, served = f.get(f"floor-{lines}"), f.get(f"allocate-{lines}")
        request = f.get(f"request-{lines}")
        out.append(
            _row(
                f"allocateOrder, {lines} lines: plain-asyncpg floor",
                c, floor,
                f"{f.get(f'transaction-{lines}')} statements per order, BEGIN and COMMIT "
                "included",
            )
        )  # fmt: skip
        ratio = _ratio(served["rate"], floor["rate"]) if served and floor else 0
        out.append(
            _row(
                f"allocateOrder, {lines} lines: server (HTTP, GraphQL, services)",
                c, served,
                f"**{ratio:.2f} of the floor**; {request.statements if request else '?'} "
                f"statements and {request.checkouts if request else '?'} pool checkouts "
                "per request",
            )
        )  # fmt: skip
    workers, one = f.get("allocate-2-workers"), f.get("allocate-2")
    if workers:
        out.append(
            _row(
                "allocateOrder, 2 lines: server with WORKERS=2 (not pinned: both cores, "
                "shared with PostgreSQL and wrk)",
                c, workers,
                f"{_ratio(workers['rate'], one['rate'] if one else 0):.2f} of one worker's "
                "rate; CPU per request summed over the workers",
            )
        )  # fmt: skip
    alone, hot = f.get("uncontended-1"), f.get("hot")
    out.append(_row("allocateOrder, 1 line, each order its own item", hc, alone, "uncontended"))
    if hot:
        per_success = _ratio(hot["retries"], hot["ok"])
        visible = hot["conflicts"] + hot["failed"]
        out.append(
            _row(
                "allocateOrder, 1 line, every order the same item (hot SKU)",
                hc, hot,
                f"**{_ratio(hot['rate'], alone['rate'] if alone else 0):.2f} of uncontended**; "
                f"{per_success:.3f} internal retries per success; {visible} client-visible "
                "conflicts",
            )
        )  # fmt: skip
    for name, what, small, small_what in (
        ("order", f"salesOrder, {sizes.read_lines} lines, all nested fields", "order-2",
         "a 2-line order"),
        ("page", f"salesOrders(first: {sizes.read_orders}), all nested fields", "page-small",
         "first: 5"),
    ):  # fmt: skip
        counted = f.get("order-20" if name == "order" else "page-big")
        smaller = f.get(small)
        served, floor = f.get(name), f.get(f"{name}-floor")
        if floor:
            out.append(
                f"| {what}: graphql-core floor (the same document over the same answer in "
                f"memory) | | - | - | - | {_ms(floor['cpu_ms'])} | {floor['executions']} "
                f"executions | {_others(floor)} |"
            )
        times = _ratio(served.get("cpu_ms", 0), floor["cpu_ms"]) if served and floor else 0
        out.append(
            _row(
                f"{what}: server", rc, served,
                f"**{times:.1f}x the floor's CPU**; "
                f"{counted.statements if counted else '?'} statements, "
                f"{counted.checkouts if counted else '?'} pool checkouts per request "
                f"({small_what}: {smaller.statements if smaller else '?'} statements)",
            )
        )  # fmt: skip
    large, small_rate = f.get("large"), (f.get("allocate-2") or {}).get("rate", 0)
    if large:
        out.append(
            _row(
                f"allocateOrder, 2 lines, {_power(f['large-balances'])} balances and "
                f"{_power(sizes.large_orders)} orders",
                c, large,
                f"**{_ratio(small_rate, large['rate']):.2f}**: rate with {_power(sizes.items)} "
                "balances / rate here (CPU per request: "
                f"{_ratio(large.get('cpu_ms', 0), f['allocate-2'].get('cpu_ms', 0)):.2f})",
            )
        )  # fmt: skip
    if "rss" in f:
        out.append(
            f"| peak RSS of the server process (VmHWM) | | | | | | **{f['rss']:.0f} MiB** after "
            f"all of the above on the small database; {f.get('rss-large', 0):.0f} MiB for the "
            "run on the large one | |"
        )
    return out


def targets(result: Result) -> list[Target]:
    f = result.figures
    found: list[Target] = []
    if "allocate-2" in f and "floor-2" in f:
        ratio = _ratio(f["allocate-2"]["rate"], f["floor-2"]["rate"])
        found.append(
            Target(
                "allocateOrder (2 lines) ≥ 0.5 of the plain-asyncpg floor",
                f"{ratio:.2f}",
                ratio >= 0.5,
            )
        )
    if "allocate-20" in f and "floor-20" in f:
        ratio = _ratio(f["allocate-20"]["rate"], f["floor-20"]["rate"])
        found.append(
            Target(
                "allocateOrder (20 lines) ≥ 0.4 of the plain-asyncpg floor",
                f"{ratio:.2f}",
                ratio >= 0.4,
            )
        )
    for name, what in (("order", "salesOrder (20 lines)"), ("page", "salesOrders(first: 50)")):
        if name in f and f"{name}-floor" in f:
            times = _ratio(f[name]["cpu_ms"], f[f"{name}-floor"]["cpu_ms"])
            found.append(
                Target(
                    f"{what}, every nested field: server CPU ≤ 3x the graphql-core floor",
                    f"{times:.1f}x",
                    times <= 3,
                )
            )
    if "hot" in f and "uncontended-1" in f:
        hot = f["hot"]
        ratio = _ratio(hot["rate"], f["uncontended-1"]["rate"])
        visible = hot["conflicts"] + hot["failed"]
        found.append(
            Target(
                "hot SKU ≥ 0.5 of the uncontended rate, no client-visible conflicts",
                f"{ratio:.2f}, {visible} conflicts",
                ratio >= 0.5 and visible == 0,
            )
        )
    if "order-20" in f and "page-big" in f:
        constant = (
            f["order-20"].statements == f["order-2"].statements
            and f["page-big"].statements == f["page-small"].statements
        )
        found.append(
            Target(
                "reads constant in SQL statements",
                f"salesOrder {f['order-2'].statements} → {f['order-20'].statements}, "
                f"salesOrders {f['page-small'].statements} → {f['page-big'].statements}",
                constant,
            )
        )
    if "large" in f and "allocate-2" in f:
        ratio = _ratio(f["allocate-2"]["rate"], f["large"]["rate"])
        cpu = _ratio(f["large"].get("cpu_ms", 0), f["allocate-2"].get("cpu_ms", 0))
        found.append(
            Target(
                "scale ratio (rate with 10^3 / with 10^6 balances) ≤ 1.2",
                f"{ratio:.2f} (server CPU per request: {cpu:.2f})",
                ratio <= 1.2,
            )
        )
    if "rss" in f:
        found.append(
            Target("peak RSS of the server ≤ 150 MiB", f"{f['rss']:.0f} MiB", f["rss"] <= 150)
        )
    return found


def render(result: Result) -> str:
    sizes = result.sizes
    m = result.machine
    lines = [
        f"Measured {datetime.date.today().isoformat()} by `make bench` "
        f"({'full' if sizes is FULL else sizes.name} run: {sizes.seconds:g} s per server "
        f"measurement after {sizes.warmup:g} s of warm-up, {sizes.floor_seconds:g} s per floor, "
        f"{sizes.read_seconds:g} s per read).",
        "",
        "Machine:",
        "",
        f"- CPU: {m.get('cpu', '?')}; memory: {m.get('memory', '?')}",
        f"- {m.get('system', '?')}",
        f"- {m.get('postgres', '?')}",
        f"- load generator: {m.get('wrk', '?')}, one thread, one Lua state "
        "(`bench/load.lua`); pgbench: "
        f"{result.figures.get('pgbench', {}).get('version', 'not run')}",
        f"- cores: {m.get('sharing', '?')}",
        "- other processes on the machine (not the bench's, not its PostgreSQL's) took "
        f"{100 * result.figures.get('others-total', 0):.0f}% of one core on average over "
        f"the {result.figures.get('wall', 0):.0f} s of the run; the last column says how "
        "much during each measurement",
        "",
        *rows(result),
        "",
        "| target (the project's goal, not a CI gate) | measured | met |",
        "| --- | --- | --- |",
        *(f"| {t.goal} | {t.measured} | {'yes' if t.met else 'no'} |" for t in targets(result)),
    ]
    if result.notes:
        lines += ["", *(f"- {note}" for note in result.notes)]
    return "\n".join(lines)


def write(path: Path, table: str) -> None:
    """Replace the text between the markers (or start the file with them)."""
    block = f"{BEGIN}\n{table}\n{END}"
    if path.exists() and BEGIN in (old := path.read_text()) and END in old:
        before, rest = old.split(BEGIN, 1)
        after = rest.split(END, 1)[1]
        path.write_text(before + block + after)
    else:
        path.write_text(f"# Benchmarks\n\n{block}\n")
