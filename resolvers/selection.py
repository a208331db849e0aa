"""What a request selected below a field, with fragments merged in: the builder
(resolvers/graph.py) fetches an edge only when it is selected."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection

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

    def add(self, selections: Iterable[Selection]) -> Wanted:
        for selection in selections:
            if isinstance(selection, SelectedField):
                below = self.fields.get(selection.name)
                if below is None:
                    below = self.fields[selection.name] = Wanted()
                below.add(selection.selections)
            elif isinstance(selection, FragmentSpread | InlineFragment):
                self.add(selection.selections)
        return self

    def union(self, other: Wanted) -> Wanted:
        """Everything selected in either (neither is changed)."""
        both = Wanted()
        for name in self.fields.keys() | other.fields.keys():
            both.fields[name] = self[name].union(other[name])
        return both


NOTHING = Wanted()  # what is selected below a field nobody selected: nothing


def wanted(info: Info) -> Wanted:
    """The selection below the field being resolved."""
    return Wanted().add(s for field in info.selected_fields for s in field.selections)
