"""A query cost limit in the spirit of Shopify's and Saleor's: the cost is an estimate
of the objects a document can return, computed before it runs and reported in the
response's `extensions.cost`.

Each object field costs 1 times how many objects it can return: a connection page
`first`/`last` (default 20), `nodes(ids)` one per id, any other list LIST_ESTIMATE.
Scalars are free. Variables count with the values sent, so the cost is computed at
execution, not validation (whose results are cached per document).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping
from typing import Any

from graphql import (
    ArgumentNode,
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    ListValueNode,
    NamedTypeNode,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    Visitor,
    get_named_type,
    get_operation_ast,
    value_from_ast_untyped,
    visit,
)
from graphql.type.definition import GraphQLInterfaceType, GraphQLOutputType
from strawberry.types import ExecutionContext

from resolvers.caches import ByIdentity
from resolvers.queries import DEFAULT_PAGE  # what a connection gives without first/last

LIST_ESTIMATE = 5  # rows assumed for a plain list such as an order's lines

Composite = GraphQLObjectType | GraphQLInterfaceType


def _is_list(output: GraphQLOutputType) -> bool:
    if isinstance(output, GraphQLNonNull):
        output = output.of_type
    return isinstance(output, GraphQLList)


class _Estimate:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
    ) -> None:
        self.schema, self.fragments, self.variables = schema, fragments, variables

    def selections(self, parent: Composite, selection_set: SelectionSetNode, page: int) -> int:
        return sum(
            self.field(parent, node, page) for parent, node in self._fields(parent, selection_set)
        )

    def _fields(
        self, parent: Composite, selection_set: SelectionSetNode
    ) -> Iterator[tuple[Composite, FieldNode]]:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                yield parent, selection
            else:
                if isinstance(selection, FragmentSpreadNode):
                    fragment = self.fragments.get(selection.name.value)
                    if fragment is None:
                        continue
                    condition: NamedTypeNode | None = fragment.type_condition
                    inner = fragment.selection_set
                else:
                    assert isinstance(selection, InlineFragmentNode)
                    condition, inner = selection.type_condition, selection.selection_set
                typed = self.schema.get_type(condition.name.value) if condition else parent
                if isinstance(typed, Composite):
                    yield from self._fields(typed, inner)

    def field(self, parent: Composite, node: FieldNode, page: int) -> int:
        definition = parent.fields.get(node.name.value)
        if definition is None or node.selection_set is None:
            return 0  # __typename, or a scalar
        arguments = self._arguments(node)
        inner = get_named_type(definition.type)
        if not isinstance(inner, Composite):
            return 0
        if inner.name.endswith("Connection"):
            return 1 + self.selections(inner, node.selection_set, self._page_size(arguments))
        if not _is_list(definition.type):
            count = 1
        elif isinstance(arguments.get("ids"), list):  # nodes(ids): one per id
            count = len(arguments["ids"])
        elif parent.name.endswith("Connection"):  # edges and nodes: one per row of the page
            count = page
        else:
            count = LIST_ESTIMATE
        return count * (1 + self.selections(inner, node.selection_set, page))

    @staticmethod
    def _page_size(arguments: Mapping[str, Any]) -> int:
        """first or last as asked (0 included), else the default. A size the resolver
        will refuse (negative, too large, not a number) is costed at its absolute value
        so it can never lower the total."""
        for name in ("first", "last"):
            size = arguments.get(name)
            if isinstance(size, int):
                return abs(size)
        return DEFAULT_PAGE

    def _arguments(self, node: FieldNode) -> dict[str, Any]:
        return {
            argument.name.value: value_from_ast_untyped(argument.value, dict(self.variables))
            for argument in node.arguments or ()
        }


def query_cost(
    schema: GraphQLSchema,
    document: Any,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
) -> int:
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return 0
    root = schema.get_root_type(operation.operation)
    if root is None:
        return 0
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    # A variable left out takes its default from the document, as execution will.
    values = {
        d.variable.name.value: value_from_ast_untyped(d.default_value)
        for d in operation.variable_definitions or ()
        if d.default_value is not None
    }
    values.update(variables or {})
    return _Estimate(schema, fragments, values).selections(
        root, operation.selection_set, DEFAULT_PAGE
    )


SIZE_ARGUMENTS = frozenset({"first", "last", "ids"})  # the only arguments the cost reads
# Per parsed document (the parse cache hands the same one back for the same text): the
# variables its cost depends on, and the costs worked out for their values.
_SIZE_VARIABLES: ByIdentity[DocumentNode, frozenset[str]] = ByIdentity()
_COSTS: ByIdentity[DocumentNode, dict[Hashable, int]] = ByIdentity()
_COSTS_PER_DOCUMENT = 64


def _size_variables(document: DocumentNode) -> frozenset[str]:
    """The variables used in a first, last or ids argument anywhere in the document."""
    found: set[str] = set()

    class Sizes(Visitor):
        def enter_argument(self, node: ArgumentNode, *_: object) -> None:
            if node.name.value in SIZE_ARGUMENTS:
                found.update(v.name.value for v in _variables_in(node.value))

    visit(document, Sizes())
    return frozenset(found)


def _variables_in(value: ValueNode) -> Iterator[VariableNode]:
    if isinstance(value, VariableNode):
        yield value
    elif isinstance(value, ListValueNode):
        for item in value.values:
            yield from _variables_in(item)


def cached_query_cost(
    schema: GraphQLSchema,
    document: Any,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
) -> int:
    """query_cost, worked out once per document, operation and values of the variables
    it depends on (an allocateOrder's order id does not change its cost)."""
    if not isinstance(document, DocumentNode):
        return query_cost(schema, document, operation_name, variables)
    names = _SIZE_VARIABLES.get(document)
    if names is None:
        names = _SIZE_VARIABLES.put(document, _size_variables(document))
    sizes = tuple(_hashable((variables or {}).get(name)) for name in sorted(names))
    key = (operation_name, sizes)
    costs = _COSTS.get(document)
    if costs is None:
        costs = _COSTS.put(document, {})
    if key not in costs:
        if len(costs) >= _COSTS_PER_DOCUMENT:
            costs.clear()
        costs[key] = query_cost(schema, document, operation_name, variables)
    return costs[key]


def _hashable(value: object) -> Hashable:
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    return value if isinstance(value, Hashable) else repr(value)


def _refusal(message: str, extensions: dict[str, Any]) -> ExecutionResult:
    return ExecutionResult(data=None, errors=[GraphQLError(message, extensions=extensions)])


def refusal(
    maximum: int, schema: GraphQLSchema, context: ExecutionContext
) -> tuple[int, ExecutionResult | None]:
    """The cost of the operation about to run, and the result that refuses it instead
    (None: it may run). Called by the schema's gate (schema/execution.py) before
    execution."""
    cost = cached_query_cost(
        schema, context.graphql_document, context.operation_name, context.variables
    )
    if cost > maximum:
        return cost, _refusal(
            f"Query cost {cost} exceeds the maximum of {maximum}: ask for "
            "smaller pages or fewer nested fields.",
            {"code": "QUERY_TOO_COSTLY", "cost": cost, "maximumCost": maximum},
        )
    return cost, None
