"""Sorting database failures: lost races (retry the unit of work), lost connections
(tell the client to retry), and the rest (a bug: let it be masked and logged)."""

from __future__ import annotations

# serialization_failure, deadlock_detected: the transaction lost a race.
RACE_SQLSTATES = frozenset({"40001", "40P01"})
# connection exceptions (08...), and the server shutting down or starting up:
# admin_shutdown (pg_terminate_backend too), crash_shutdown, cannot_connect_now.
DISCONNECT_SQLSTATES = ("08", "57P01", "57P02", "57P03")


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


def sqlstate(error: BaseException) -> str | None:
    state = getattr(error, "sqlstate", None) or getattr(
        getattr(error, "orig", None), "sqlstate", None
    )
    return state if isinstance(state, str) else None


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
    for cause in _causes(error):
        state = sqlstate(cause)
        if state is not None and state.startswith(DISCONNECT_SQLSTATES):
            return True
        if isinstance(cause, OSError | TimeoutError):
            return True
        name = type(cause).__name__
        # "released back to the pool": asyncpg's pool let go of a connection that the
        # server closed under us (we never give one back while it is in use).
        if name in {"ConnectionDoesNotExistError", "InterfaceError"} and any(
            words in str(cause) for words in ("closed", "does not exist", "released back")
        ):
            return True
        if name == "InternalClientError" and "cannot switch to state" in str(cause):
            return True  # asyncpg's protocol state after the connection was cut under it
    return False
