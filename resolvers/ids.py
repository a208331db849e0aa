"""Relay global ids: base64 of "TypeName:pk", opaque to clients."""

from __future__ import annotations

import base64
import binascii


def to_global_id(type_name: str, pk: int) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


def parse_global_id(global_id: str) -> tuple[str, int] | None:
    """(type name, pk), or None for anything that is not one of our ids."""
    try:
        type_name, _, pk = base64.b64decode(global_id, validate=True).decode().partition(":")
        return (type_name, int(pk)) if type_name and pk.isdigit() else None
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def pk_of(global_id: str, type_name: str) -> int | None:
    """The pk when global_id names an object of type_name; None otherwise."""
    parsed = parse_global_id(global_id)
    return parsed[1] if parsed and parsed[0] == type_name else None
