"""The fuzzer's verdict on each answer (schemathesis hooks; `.ci/schemathesis.toml` names
this module, CI's fuzz step runs it against the live server).

schemathesis' own GraphQL checks count every error with a `path` as a server error and
every refused document as a failure, which would fail on this API's coded refusals
(INVALID_INPUT on a field, QUERY_TOO_COSTLY before execution). What SPEC 7 asks is
narrower: no input gets a 5xx or a masked "Unexpected error.". A field error must also
say its `extensions.code`: one without any is an error no code path meant to give.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from schemathesis import Case, CheckContext, Response

UNEXPECTED = "Unexpected error."


def _errors(response: Response) -> list[dict[str, Any]]:
    try:
        body = response.json()
    except ValueError as error:
        raise AssertionError(f"The answer is not JSON: {response.text[:200]!r}") from error
    if not isinstance(body, dict):
        raise AssertionError(f"The answer is not a JSON object: {response.text[:200]!r}")
    errors = body.get("errors") or []
    assert isinstance(errors, list), f"`errors` is not a list: {errors!r}"
    return [e for e in errors if isinstance(e, dict)]


@schemathesis.check
def no_server_error_nor_unexpected_error(
    ctx: CheckContext, response: Response, case: Case[Any]
) -> bool | None:
    """No 5xx; no "Unexpected error."; every field error carries a code."""
    assert response.status_code < 500, f"HTTP {response.status_code}: {response.text[:500]}"
    for error in _errors(response):
        message = error.get("message")
        assert message != UNEXPECTED, f"A masked failure at {error.get('path')}"
        if error.get("path") is not None:
            code = (error.get("extensions") or {}).get("code")
            assert code, f"A field error without a code: {message!r} at {error['path']}"
    return None
