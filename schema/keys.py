"""`make api-key`, `make api-key-revoke` and `make api-keys`: partners' API keys in the
database `make run` would use (DATABASE_URL, or the embedded one, also while `make run`
serves it), migrated first if need be.

    python -m schema.keys create NAME SCOPE [SCOPE ...]   # the secret alone on the last line
    python -m schema.keys revoke NAME
    python -m schema.keys list

A refusal prints `error: CODE: message` on stderr and exits with 1.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from db.api_keys import ApiKey, NameTaken, create_key, list_keys, revoke_key
from db.database import Database
from db.engine import upgrade_to_head
from resolvers.access import ALL_SCOPES, RESERVED_ACTORS
from schema.serve import database
from schema.settings import Settings

NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
SCOPE_NAMES = sorted(scope.value for scope in ALL_SCOPES)


class KeyRefused(Exception):  # noqa: N818 - an outcome: the admin sees its code and message
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def checked_name(name: str) -> str:
    """A key's name is its actor on record: short, plain and unmistakable."""
    if not NAME.fullmatch(name):
        raise KeyRefused(
            "INVALID_INPUT",
            f"{name!r} is not a key name: use 1 to 64 lowercase letters, digits, '.', '_' "
            "and '-', starting with a letter or a digit (e.g. acme-erp).",
        )
    if name in RESERVED_ACTORS:
        raise KeyRefused(
            "INVALID_INPUT",
            f"{name!r} is reserved: the server records it as the actor of "
            f"{'requests without a credential' if name == 'anonymous' else 'its own changes'}.",
        )
    return name


def checked_scopes(scopes: Sequence[str]) -> list[str]:
    """Known scopes only, each once, in the order given; at least one."""
    if not scopes:
        raise KeyRefused(
            "INVALID_INPUT", f"Give the key at least one scope: {' '.join(SCOPE_NAMES)}."
        )
    unknown = [scope for scope in scopes if scope not in SCOPE_NAMES]
    if unknown:
        raise KeyRefused(
            "INVALID_INPUT",
            f"Unknown scope(s) {' '.join(repr(s) for s in unknown)}; "
            f"the scopes are: {' '.join(SCOPE_NAMES)}.",
        )
    return list(dict.fromkeys(scopes))


@dataclass
class Outcome:
    lines: list[str]  # printed once the embedded database is let go of, secret last


async def _create(db: Database, name: str, scopes: list[str]) -> Outcome:
    async with db.session() as session:
        try:
            key, secret = await create_key(session, name, scopes)
        except NameTaken as taken:
            raise KeyRefused(
                "DUPLICATE",
                f"An API key named {taken.name!r} exists or existed: a name is never used "
                "twice, even after its key is revoked. Choose another name.",
            ) from taken
    return Outcome(
        [
            f"API key {key.name!r} created, prefix {key.prefix}, scopes {' '.join(key.scopes)}.",
            "Its secret is below. It is shown this once: only a hash of it is kept.",
            "Send it as `Authorization: Bearer <secret>`.",
            secret,
        ]
    )


async def _revoke(db: Database, name: str) -> Outcome:
    async with db.session() as session:
        revoked = await revoke_key(session, name)
    if revoked is None:
        raise KeyRefused("NOT_FOUND", f"There is no API key named {name!r} (see make api-keys).")
    key, earlier = revoked
    when = _time(key.revoked_at)
    if earlier:
        return Outcome([f"API key {key.name!r} ({key.prefix}) was revoked already, at {when}."])
    return Outcome([f"API key {key.name!r} ({key.prefix}) revoked at {when}: refused from now."])


async def _list(db: Database) -> Outcome:
    async with db.session() as session:
        keys = await list_keys(session)
    if not keys:
        return Outcome(['No API keys yet: make api-key NAME=<name> SCOPES="<scope> ..."'])
    return Outcome(_table(keys))


def _time(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S%z") if moment else "-"


def _table(keys: list[ApiKey]) -> list[str]:
    header = ("NAME", "PREFIX", "SCOPES", "CREATED", "LAST USED", "REVOKED")
    rows = [header] + [
        (
            k.name,
            k.prefix,
            " ".join(k.scopes),
            _time(k.created_at),
            _time(k.last_used_at),
            _time(k.revoked_at),
        )
        for k in keys
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in rows]  # fmt: skip


async def _run(url: str, arguments: argparse.Namespace) -> Outcome:
    db = Database(url, size=1)
    try:
        if arguments.command == "create":
            return await _create(db, arguments.name, arguments.scopes)
        if arguments.command == "revoke":
            return await _revoke(db, arguments.name)
        return await _list(db)
    finally:
        await db.close()


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m schema.keys", description=__doc__.split("\n")[0])
    commands = top.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="make a key and print its secret")
    create.add_argument("name")
    create.add_argument("scopes", nargs="*", metavar="scope", help=" ".join(SCOPE_NAMES))
    revoke = commands.add_parser("revoke", help="refuse the key from now on")
    revoke.add_argument("name")
    commands.add_parser("list", help="names, scopes and times; never secrets")
    return top


def _stop_on_sigterm(signum: int, frame: object) -> None:
    sys.exit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if arguments.command == "create":
            checked_name(arguments.name)
            arguments.scopes = checked_scopes(arguments.scopes)
        settings = Settings()
        with database(settings) as url:
            upgrade_to_head(url)
            outcome = asyncio.run(_run(url, arguments))
    except KeyRefused as refusal:
        print(f"error: {refusal.code}: {refusal.message}", file=sys.stderr)
        return 1
    # After the embedded server is let go of, so that nothing it logs comes after the secret.
    print("\n".join(outcome.lines), flush=True)
    return 0


if __name__ == "__main__":
    # Killed by SIGTERM without this, it would skip letting go of the embedded server, and
    # the server would then outlive the `make run` that shares it.
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    sys.exit(main())
