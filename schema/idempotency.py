"""Idempotent retries (SPEC section 8) at the HTTP edge.

A POST whose mutation carries an `Idempotency-Key` header (or an `@idempotent(key:)`
directive on its mutation field) runs in one transaction that also claims the key for
the credential: the change and the key, with the answer the client got, commit together.
A repeat of the same request gets that answer again (`Idempotent-Replayed: true`) and
changes nothing; the same key with another request gets 422. An outcome that changed
nothing and may change on a retry (FORBIDDEN, UNAVAILABLE, VERSION_CONFLICT after the
server's own retries, any refusal before or failure during execution) is rolled back
with its key, so a repeat runs again.
"""

from __future__ import annotations

import functools
import hashlib
import re

import orjson
from cross_web import HTTPException
from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    OperationType,
    StringValueNode,
    get_operation_ast,
    parse,
)
from starlette.requests import Request
from starlette.responses import Response
from strawberry.http import GraphQLRequestData

from db import idempotency
from db.errors import Unavailable, sqlstate
from db.idempotency import Answer, Claim
from resolvers.context import Context
from schema.http import Answered, RefusedRequest, error_response

HEADER = "idempotency-key"
DIRECTIVE = "idempotent"
_PRINTABLE = re.compile(r"[\x20-\x7e]{1,255}")
LOCK_NOT_AVAILABLE = "55P03"


@functools.lru_cache(maxsize=256)
def _parsed(query: str) -> DocumentNode | None:
    try:
        return parse(query)
    except GraphQLError:
        return None  # strawberry reports the syntax error as usual


def _the_mutation(request_data: GraphQLRequestData) -> list[FieldNode] | None:
    """The root fields of the request's operation, when it is a mutation."""
    document = _parsed(request_data.query) if request_data.query else None
    operation = get_operation_ast(document, request_data.operation_name) if document else None
    if operation is None or operation.operation is not OperationType.MUTATION:
        return None
    return [s for s in operation.selection_set.selections if isinstance(s, FieldNode)]


def _directive_key(fields: list[FieldNode]) -> str | None:
    for field in fields:
        for directive in field.directives or ():
            if directive.name.value == DIRECTIVE:
                for argument in directive.arguments or ():
                    if argument.name.value == "key" and isinstance(argument.value, StringValueNode):
                        return argument.value.value
                raise HTTPException(400, "@idempotent takes its key as a string literal.")
    return None


def key_of(request: Request, fields: list[FieldNode]) -> str | None:
    """The request's idempotency key: from the header, the directive, or both agreeing."""
    header, directive = request.headers.get(HEADER), _directive_key(fields)
    if header is not None and directive is not None and header != directive:
        raise HTTPException(400, "The Idempotency-Key header and @idempotent disagree.")
    key = header if header is not None else directive
    if key is not None and not _PRINTABLE.fullmatch(key):
        raise HTTPException(400, "An idempotency key is 1 to 255 printable ASCII characters.")
    return key


def digest(request_data: GraphQLRequestData) -> bytes:
    """The same request: the same query, operationName and variables (as parsed JSON)."""
    same = [request_data.query, request_data.operation_name, request_data.variables]
    return hashlib.sha256(orjson.dumps(same, option=orjson.OPT_SORT_KEYS)).digest()


async def begin(
    context: Context, request: Request, request_data: GraphQLRequestData, ttl: float
) -> None:
    """Claim the request's key, if it is a mutation with one, in a transaction left open
    on the request's connection; or answer with what the key's first request got."""
    fields = _the_mutation(request_data) if request.method == "POST" else None
    key = key_of(request, fields) if fields is not None else None
    if fields is None or key is None:
        return
    if len(fields) != 1:
        raise HTTPException(400, "An idempotent request runs exactly one mutation.")
    owner, session, digested = context.credential.owner, context.session, digest(request_data)
    try:
        await session.begin()
        kept = await idempotency.claim(session, owner, key, digested, ttl)
    except Unavailable:
        raise Answered(_refusal(request, 503, "UNAVAILABLE")) from None
    except Exception as error:
        await session.rollback()
        if sqlstate(error) == LOCK_NOT_AVAILABLE:
            raise Answered(_refusal(request, 409, "IDEMPOTENCY_KEY_IN_USE")) from None
        raise
    if kept is None:
        context.claim = Claim(owner, key)
        return
    await session.rollback()
    if kept.request_digest != digested:
        raise Answered(_refusal(request, 422, "IDEMPOTENCY_KEY_REUSED"))
    raise Answered(
        Response(
            kept.answer.body, status_code=kept.answer.status,
            media_type=kept.answer.media_type,
            headers={"Idempotent-Replayed": "true", "Vary": "Accept"},
        )
    )  # fmt: skip


async def end(context: Context, request: Request, response: Response) -> Response:
    """Keep the answer with the key and commit, or roll both back (see the module); the
    answer to send. When the connection is lost on the way, the change may or may not
    have committed with its key, and the answer made is not sent: 503 asks for a repeat,
    which is replayed or runs again."""
    claim, session = context.claim, context.session
    if claim is None:
        return response
    context.claim = None
    if response.status_code != 200 or context.retryable_refusal:
        await session.rollback()
        return response
    media_type = response.media_type or "application/json"
    answer = Answer(response.status_code, media_type, bytes(response.body))
    try:
        await idempotency.keep(session, claim, answer)
        await session.commit()
    except Unavailable:
        return _refusal(request, 503, "UNAVAILABLE")
    return response


MESSAGES = {
    "IDEMPOTENCY_KEY_REUSED": "This idempotency key was used with another request.",
    "IDEMPOTENCY_KEY_IN_USE": "A request with this idempotency key is still running.",
    "UNAVAILABLE": "The database could not be reached; send the request again with the "
    "same Idempotency-Key: it is answered as it was, or runs now.",
}
# Answers to come back in a moment.
RETRY_LATER = {409, 503}


def _refusal(request: Request, status: int, code: str) -> Response:
    headers = {"Retry-After": "1"} if status in RETRY_LATER else {}
    return error_response(request, RefusedRequest(status, MESSAGES[code], code, headers))
