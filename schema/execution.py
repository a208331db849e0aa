"""How the schema validates and reports: a validation cache keyed by the parsed
document itself, and logging that tells a client's mistakes from our failures."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document
from strawberry.types import ExecutionContext

from db.errors import Unavailable
from resolvers.caches import ByIdentity
from services.domain.errors import DomainError

log = logging.getLogger("strawberry.execution")

# Per parsed document: its validation errors, by schema and rules.
_VALIDATED: ByIdentity[object, dict[tuple[int, tuple[type, ...]], list[GraphQLError]]] = ByIdentity(
    256
)


class DocumentValidationCache(SchemaExtension):
    """strawberry's ValidationCache, keyed by the document's identity (ParserCache hands
    back the same one for the same text) rather than its value: an lru_cache hashes the
    whole AST, node by node, on every request."""

    def on_validate(self) -> Iterator[None]:
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


def is_unexpected(error: GraphQLError) -> bool:
    """Raised by our code, and not a GraphQL error or a domain or database outcome we
    meant to show: a bug, to be masked for the client and logged with its traceback."""
    return error.original_error is not None and not isinstance(
        error.original_error, GraphQLError | DomainError | Unavailable
    )


class AllocationSchema(strawberry.Schema):
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
