"""A cache for what is worked out once per parsed document.

The schema's parse cache (schema/execution.py) hands back the same document object for
the same query text, so what depends only on the document (its validation, its cost,
what a field selects) can be kept per object. Not by equality: graphql-core's AST nodes
are frozen dataclasses, and hashing one hashes its whole subtree, on every lookup. So
by identity, holding the key weakly (an entry is good only while its document lives).
"""

from __future__ import annotations

import weakref
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class ByIdentity(Generic[K, V]):
    def __init__(self, maxsize: int = 1024) -> None:
        self.maxsize = maxsize
        self._entries: dict[int, tuple[weakref.ref[K], V]] = {}

    def get(self, key: K) -> V | None:
        entry = self._entries.get(id(key))
        if entry is not None and entry[0]() is key:
            return entry[1]
        return None

    def put(self, key: K, value: V) -> V:
        if len(self._entries) >= self.maxsize:
            self._entries.clear()  # rare: as many distinct documents as the parser keeps
        self._entries[id(key)] = (weakref.ref(key), value)
        return value
