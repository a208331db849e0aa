"""What a request selected below a field, with fragments merged in: the builder
(resolvers/graph.py) fetches an edge only when it is selected."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    SelectionNode,
)

from resolvers.caches import ByIdentity

if TYPE_CHECKING:
    from resolvers.context import Info


class Wanted:
    """Field names (as in GraphQL) selected at one level, each with what is selected
    below it. Fragments and aliases are merged: a field asked for twice is fetched once,
    with everything either asked for below it. Type conditions are not told apart, so
    `node` selections on several types may fetch an edge one type does not have."""

    __slots__ = ("fields",)

    def __init__(self) -> None:
        self.fields: dict[str, Wanted] = {}

    def __contains__(self, name: str) -> bool:
        return name in self.fields

    def __getitem__(self, name: str) -> Wanted:
        return self.fields.get(name) or NOTHING

    def any(self, *names: str) -> bool:
        return any(name in self.fields for name in names)

    def union(self, other: Wanted) -> Wanted:
        """Everything selected in either (neither is changed)."""
        both = Wanted()
        for name in self.fields.keys() | other.fields.keys():
            both.fields[name] = self[name].union(other[name])
        return both

    def add(
        self,
        selections: Iterable[SelectionNode],
        fragments: Mapping[str, FragmentDefinitionNode],
    ) -> Wanted:
        for selection in selections:
            if isinstance(selection, FieldNode):
                name = selection.name.value
                below = self.fields.get(name)
                if below is None:
                    below = self.fields[name] = Wanted()
                if selection.selection_set is not None:
                    below.add(selection.selection_set.selections, fragments)
            elif isinstance(selection, InlineFragmentNode):
                self.add(selection.selection_set.selections, fragments)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = fragments.get(selection.name.value)
                if fragment is not None:
                    self.add(fragment.selection_set.selections, fragments)
        return self


NOTHING = Wanted()  # what is selected below a field nobody selected: nothing

# What a field node selects is worked out once per parsed document.
_KNOWN: ByIdentity[FieldNode, Wanted] = ByIdentity()


def wanted(info: Info) -> Wanted:
    """The selection below the field being resolved (never to be changed by callers)."""
    raw = info._raw_info  # graphql-core's own info: its AST nodes, not strawberry's copies
    first = raw.field_nodes[0]
    known = _KNOWN.get(first) if len(raw.field_nodes) == 1 else None
    if known is not None:
        return known
    below = Wanted()
    for node in raw.field_nodes:
        if node.selection_set is not None:
            below.add(node.selection_set.selections, raw.fragments)
    if len(raw.field_nodes) == 1:
        _KNOWN.put(first, below)
    return below
