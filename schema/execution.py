"""How the schema parses, validates, limits and reports: one gate with the caches and
limits every operation passes, and logging that tells a client's mistakes from our
failures."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import strawberry
from graphql import (
    ASTValidationRule,
    DirectiveLocation,
    ExecutionResult,
    GraphQLError,
    GraphQLFieldResolver,
    GraphQLObjectType,
    GraphQLSchema,
    parse,
)
from strawberry.directive import DirectiveValue
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types import ExecutionContext
from strawberry.types.field import StrawberryField

from db.errors import Unavailable
from resolvers.caches import ByIdentity
from schema import cost
from services.domain.errors import DomainError

log = logging.getLogger("strawberry.execution")

# Per parsed document: its validation errors, by schema and rules.
_VALIDATED: ByIdentity[object, dict[tuple[int, tuple[type, ...]], list[GraphQLError]]] = ByIdentity(
    256
)
# Parsed documents by text and token limit: the same text gives back the same document,
# so the validation and cost caches can key on its identity.
_parse = functools.lru_cache(maxsize=256)(parse)
UNEXPECTED = "Unexpected error."


@dataclass(frozen=True)
class Limits:
    """What the gate refuses: documents over max_tokens tokens (at parse), breaking the
    extra validation rules (depth, aliases, introspection), or costing over max_cost."""

    max_tokens: int
    rules: tuple[type[ASTValidationRule], ...]
    max_cost: int


class RequestGate(SchemaExtension):
    """Every check and cache an operation passes on its way, in one extension:
    strawberry's parser cache and token limit, extra validation rules, a validation
    cache, the cost limit (schema/cost.py) and the masking of unexpected errors.

    One extension rather than strawberry's six: strawberry wraps every hook of every
    extension in context managers it makes anew for each request, which cost more than
    the work those hooks do once their caches are warm."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.cost: int | None = None

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.validation_rules = context.validation_rules + self.limits.rules
        yield
        result = context.result
        if result is not None and result.errors:
            result.errors = [_masked(e) if is_unexpected(e) else e for e in result.errors]

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is None and context.query:
            context.graphql_document = _parse(context.query, max_tokens=self.limits.max_tokens)
        yield

    def on_validate(self) -> Iterator[None]:
        """strawberry's ValidationCache, keyed by the document's identity (the parse
        cache hands back the same one for the same text) rather than its value: an
        lru_cache hashes the whole AST, node by node, on every request."""
        context = self.execution_context
        schema, document = context.schema._schema, context.graphql_document
        assert document is not None
        rules = tuple(context.validation_rules)
        known = _VALIDATED.get(document)
        if known is None:
            known = _VALIDATED.put(document, {})
        key = (id(schema), rules)
        if key not in known:
            known[key] = validate_document(schema, document, rules)
        context.pre_execution_errors = known[key]
        yield

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        try:
            self.cost, refused = cost.refusal(self.limits.max_cost, context.schema._schema, context)
        except Exception:
            # Raised in a hook, it would reach the client as it is: masked here.
            log.exception("query cost estimate failed")
            refused = ExecutionResult(data=None, errors=[GraphQLError(UNEXPECTED)])
        if refused is not None:
            context.result = refused
        yield

    def get_results(self) -> dict[str, Any]:
        if self.cost is None:
            return {}
        return {"cost": {"requestedQueryCost": self.cost, "maximumAvailable": self.limits.max_cost}}


def _masked(error: GraphQLError) -> GraphQLError:
    """The error as a client sees it: where it happened, not what it was."""
    return GraphQLError(
        UNEXPECTED,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
    )


def is_unexpected(error: GraphQLError) -> bool:
    """Raised by our code, and not a GraphQL error or a domain or database outcome we
    meant to show: a bug, to be masked for the client and logged with its traceback."""
    return error.original_error is not None and not isinstance(
        error.original_error, GraphQLError | DomainError | Unavailable
    )


def read_attributes_directly(schema: GraphQLSchema) -> int:
    """Resolve every plain attribute field with one getattr.

    Strawberry resolves a field without a resolver through four calls of its own
    (field.get_result, base_resolver, python_name, the default resolver); every field of
    this API's objects is such a field (resolvers/graph.py builds them whole), so that
    is most of what a read costs above graphql-core. Returns how many it changed."""
    changed = 0
    for graphql_type in schema.type_map.values():
        if not isinstance(graphql_type, GraphQLObjectType):
            continue
        for graphql_field in graphql_type.fields.values():
            field = graphql_field.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
            basic = getattr(graphql_field.resolve, "_is_default", False)
            if basic and isinstance(field, StrawberryField) and field.base_resolver is None:
                graphql_field.resolve = _attribute(field.python_name)
                changed += 1
    return changed


def _attribute(name: str) -> GraphQLFieldResolver:
    def resolve(source: object, _: object) -> object:
        return getattr(source, name)

    return resolve


@strawberry.directive(
    locations=[DirectiveLocation.FIELD],
    description="Run this mutation at most once per credential and key, as the "
    "Idempotency-Key header does (SPEC section 8). Read at the HTTP edge before the "
    "request runs (schema/idempotency.py); it changes nothing in the result.",
)
def idempotent(value: DirectiveValue[object], key: str) -> object:
    return value


class AllocationSchema(strawberry.Schema):
    def get_extensions(self, sync: bool = False) -> list[SchemaExtension]:
        """Without strawberry's DirectivesExtension, which a declared directive brings:
        it would wrap every field's resolution in an awaited call, for @idempotent,
        which resolves nothing. Each made anew from its factory, as strawberry does."""
        return [
            extension if isinstance(extension, SchemaExtension) else extension()
            for extension in self.extensions
        ]

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """A client's mistake (syntax, validation, a refused limit, a cursor it did not
        get from us, a domain refusal) at info, without a traceback; a lost database at
        warning; only an unexpected failure at error, with its traceback."""
        for error in errors:
            if is_unexpected(error):
                log.error(error, exc_info=error.original_error)
            elif isinstance(error.original_error, Unavailable):
                log.warning("%s", error.message)
            else:
                log.info("client error: %s", error.message)
