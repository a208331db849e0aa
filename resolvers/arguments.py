"""Text at the edge (SPEC section 7): every text argument, at any depth of an input, has
a length limit in code points and no control characters, and id lists have caps, so no
odd input reaches a table (PostgreSQL refuses NUL, and a lone surrogate cannot be
encoded). Checked for every root field in one place (resolvers.access.guard_root_fields),
before its resolver reads any of it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

# Code points, by the argument's (or input field's) GraphQL name.
LIMITS = {
    "sku": 64, "code": 64, "locationCode": 64, "lotNumber": 64, "number": 64,
    "unit": 16, "name": 200, "customer": 200, "reason": 500, "after": 200, "before": 200,
}  # fmt: skip
OTHER_TEXT = 200  # ids, and any text not named above
MULTILINE = frozenset({"reason"})  # may hold tabs and newlines
LIST_CAPS = {"ids": 100}  # refused before any element is read
# Control characters (Unicode's Cc: C0, DEL and C1) and lone surrogates.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


@dataclass(frozen=True)
class BadArgument:
    path: tuple[str, ...]  # the GraphQL path of the argument, e.g. ("input", "lines", "0", "sku")
    message: str


def bad_argument(arguments: Mapping[str, object]) -> BadArgument | None:
    """The first argument at fault, or None."""
    for name, value in arguments.items():
        found = _bad(value, (name,), name)
        if found is not None:
            return found
    return None


def _bad(value: object, path: tuple[str, ...], name: str) -> BadArgument | None:
    if isinstance(value, str):
        return _bad_text(value, path, name)
    if isinstance(value, list | tuple):
        cap = LIST_CAPS.get(name)
        if cap is not None and len(value) > cap:
            return BadArgument(path, f"At most {cap} {name}.")
        for index, item in enumerate(value):
            found = _bad(item, (*path, str(index)), name)
            if found is not None:
                return found
        return None
    if isinstance(value, Mapping):
        for key, inner in value.items():
            found = _bad(inner, (*path, str(key)), str(key))
            if found is not None:
                return found
    return None


def _bad_text(text: str, path: tuple[str, ...], name: str) -> BadArgument | None:
    limit = LIMITS.get(name, OTHER_TEXT)
    if len(text) > limit:
        return BadArgument(path, f"{name} may be at most {limit} characters long.")
    control = _CONTROL_BUT_LINES if name in MULTILINE else _CONTROL
    if control.search(text):
        return BadArgument(path, f"{name} may not contain control characters.")
    return None
