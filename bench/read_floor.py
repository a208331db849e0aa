"""The floor for reads: what the GraphQL layer alone costs for a document.

graphql-core executes the same document over the same answer held in memory: the
server's own response data as plain dicts, resolved by graphql-core's default resolvers
against a schema built from the committed SDL. No HTTP, no database, no strawberry.
Parsing and validation are done once, as the server caches them too.

Run by bench/run.py as a process of its own, pinned like the server:
    python -m bench.read_floor options.json
where the file holds {"query": ..., "variables": {...}, "data": {...}, "seconds": 5}; it
prints one JSON line: the CPU milliseconds per execution.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from graphql import build_schema, execute_sync, parse, validate

from schema.export import sdl


def measure(options: dict[str, Any]) -> dict[str, Any]:
    schema = build_schema(sdl())
    document = parse(options["query"])
    problems = validate(schema, document)
    if problems:
        raise SystemExit(f"the document does not validate against the SDL: {problems}")
    variables, data = options["variables"], options["data"]
    result = execute_sync(schema, document, root_value=data, variable_values=variables)
    if result.errors or result.data != data:  # the floor must give the server's answer
        raise SystemExit(f"graphql-core did not give the server's answer: {result.errors}")
    runs, started, until = 0, time.process_time(), time.monotonic() + options["seconds"]
    while runs < 3 or time.monotonic() < until:
        execute_sync(schema, document, root_value=data, variable_values=variables)
        runs += 1
    return {"executions": runs, "cpu_ms": 1000 * (time.process_time() - started) / runs}


def main() -> None:
    print(json.dumps(measure(json.loads(Path(sys.argv[1]).read_text()))), flush=True)


if __name__ == "__main__":
    main()
