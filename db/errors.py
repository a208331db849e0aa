"""Sorting database failures: lost races (retry the unit of work), lost connections
(tell the client to retry), and the rest (a bug: let it be masked and logged)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from sqlalchemy.exc import DBAPIError

# serialization_failure, deadlock_detected: the transaction lost a race.
RACE_SQLSTATES = {"40001", "40P01"}
# connection exceptions (08...), and the server shutting down or starting up:
# admin_shutdown (pg_terminate_backend too), crash_shutdown, cannot_connect_now.
DISCONNECT_SQLSTATES = ("08", "57P01", "57P02", "57P03")


def sqlstate(error: BaseException) -> str | None:
    return getattr(getattr(error, "orig", None), "sqlstate", None)


def _causes(error: BaseException) -> list[BaseException]:
    chain, seen = [], set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or getattr(current, "orig", None) or current.__context__
    return chain


def connection_lost(error: BaseException) -> bool:
    """True when the database went away (or could not be reached), not when a
    statement failed on a live connection."""
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    for cause in _causes(error):
        state = getattr(cause, "sqlstate", None)
        if isinstance(state, str) and state.startswith(DISCONNECT_SQLSTATES):
            return True
        if isinstance(cause, OSError | TimeoutError):
            return True
        if type(cause).__name__ in {"ConnectionDoesNotExistError", "InterfaceError"} and (
            "closed" in str(cause) or "does not exist" in str(cause)
        ):
            return True
        if type(cause).__name__ == "InternalClientError" and "cannot switch to state" in str(cause):
            return True  # asyncpg's protocol state after the connection was cut under it
    return False


class Unavailable(Exception):  # noqa: N818 - an outcome, named as clients see it
    """The database could not be reached: an infrastructure outcome, not a domain rule.
    Clients see the code UNAVAILABLE and may retry shortly."""

    message = (
        "The database could not be reached; try again shortly. A change that was "
        "being committed may have been applied: read the object again before retrying."
    )

    def __init__(self) -> None:
        super().__init__(self.message)

    @property
    def extensions(self) -> dict[str, str]:
        """Where a query reports it, graphql-core copies this into the error's extensions."""
        return {"code": "UNAVAILABLE"}


def unavailable() -> Unavailable:
    return Unavailable()


@contextlib.asynccontextmanager
async def reporting_lost_connections() -> AsyncIterator[None]:
    """Turn a lost connection inside the block into the UNAVAILABLE domain error."""
    try:
        yield
    except Exception as error:
        if connection_lost(error):
            raise unavailable() from error
        raise
