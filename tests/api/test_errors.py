"""Domain failures are payload errors with codes; unexpected ones are masked and logged."""

from __future__ import annotations

import logging

import pytest

from resolvers.ids import to_global_id
from services import orders
from tests.conftest import GraphQLClient

ALLOCATE = """mutation($id: ID!, $v: Int) {
  allocateOrder(id: $id, expectedVersion: $v) {
    salesOrder { id } allocations { id } errors { code field message currentVersion } } }"""
CREATE_ITEM = """mutation($input: CreateItemInput!) {
  createItem(input: $input) { item { sku } errors { code field message } } }"""
CREATE_ORDER = """mutation($input: CreateSalesOrderInput!) {
  createSalesOrder(input: $input) { salesOrder { id version } errors { code field } } }"""


async def test_an_unknown_or_wrong_type_or_garbled_id_is_not_found_in_the_payload(
    gql: GraphQLClient,
) -> None:
    for bad_id in (to_global_id("SalesOrder", 999), to_global_id("Item", 1), "not-an-id"):
        payload = (await gql.data(ALLOCATE, id=bad_id))["allocateOrder"]
        assert payload["salesOrder"] is None
        assert payload["allocations"] == []
        assert [(e["code"], e["field"]) for e in payload["errors"]] == [("NOT_FOUND", ["id"])]


async def test_a_duplicate_sku_is_reported_with_its_field(gql: GraphQLClient) -> None:
    item = {"sku": "BOLT", "name": "Bolt"}
    assert (await gql.data(CREATE_ITEM, input=item))["createItem"]["errors"] == []
    payload = (await gql.data(CREATE_ITEM, input=item))["createItem"]
    assert payload["item"] is None
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [("DUPLICATE", ["input", "sku"])]


async def test_a_stale_expected_version_reports_the_current_one(gql: GraphQLClient) -> None:
    await gql.data(CREATE_ITEM, input={"sku": "BOLT", "name": "Bolt"})
    created = (
        await gql.data(
            CREATE_ORDER, input={"customer": "Acme", "lines": [{"sku": "BOLT", "quantity": 2}]}
        )
    )["createSalesOrder"]
    order = created["salesOrder"]
    payload = (await gql.data(ALLOCATE, id=order["id"], v=order["version"] + 7))["allocateOrder"]
    assert payload["salesOrder"] is None
    [error] = payload["errors"]
    assert (error["code"], error["currentVersion"]) == ("VERSION_CONFLICT", order["version"])


async def test_an_order_line_of_an_unknown_sku_points_at_the_line(gql: GraphQLClient) -> None:
    payload = (
        await gql.data(
            CREATE_ORDER, input={"customer": "Acme", "lines": [{"sku": "NOPE", "quantity": 1}]}
        )
    )["createSalesOrder"]
    assert payload["salesOrder"] is None
    assert payload["errors"] == [{"code": "NOT_FOUND", "field": ["input", "lines", "0", "sku"]}]


async def test_an_unexpected_failure_is_masked_for_the_client_and_logged_for_us(
    gql: GraphQLClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError('relation "secret_table" does not exist: SELECT * FROM secret_table')

    monkeypatch.setattr(orders, "allocate_order", broken)
    with caplog.at_level(logging.ERROR):
        response = await gql.http.post(
            "/graphql", json={"query": ALLOCATE, "variables": {"id": to_global_id("SalesOrder", 1)}}
        )

    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    assert [e["message"] for e in body["errors"]] == ["Unexpected error."]
    for leak in ("secret_table", "SELECT", "RuntimeError", "Traceback", "broken"):
        assert leak not in response.text
    logged = [r for r in caplog.records if r.exc_info and "secret_table" in str(r.exc_info[1])]
    assert logged, "the failure was not logged with its exception"


async def test_a_clients_own_query_mistake_stays_readable(gql: GraphQLClient) -> None:
    body = await gql.post("{ salesOrder(number: 5) { nope } }")
    messages = " ".join(e["message"] for e in body["errors"])
    assert "nope" in messages
    assert "Unexpected error." not in messages


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("{ salesOrder(number: 5) { nope } }", "nope"),  # validation
        ("{ salesOrder(number: ", "Syntax Error"),  # parsing
        ('{ items(after: "bm9wZQ==") { totalCount } }', "not a cursor"),  # a cursor not ours
        ("{ items(first: 1000) { totalCount } }", "between 0 and"),  # a refused size
        ("{ salesOrder { id } }", "id or its number"),
    ],
)
async def test_a_clients_mistake_is_logged_at_info_without_a_traceback(
    gql: GraphQLClient, caplog: pytest.LogCaptureFixture, query: str, says: str
) -> None:
    with caplog.at_level(logging.INFO, logger="strawberry.execution"):
        body = await gql.post(query)

    assert says in " ".join(e["message"] for e in body["errors"])
    ours = [r for r in caplog.records if r.name == "strawberry.execution"]
    assert ours, "the mistake was not logged at all"
    assert all(r.levelno == logging.INFO and r.exc_info is None for r in ours), [
        (r.levelname, r.getMessage()) for r in ours
    ]


async def test_only_an_unexpected_failure_is_logged_at_error(
    gql: GraphQLClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(orders, "allocate_order", broken)
    with caplog.at_level(logging.INFO, logger="strawberry.execution"):
        await gql.post(ALLOCATE, id=to_global_id("SalesOrder", 1))
        await gql.post("{ salesOrder(number: 5) { nope } }")

    levels = [(r.levelno, r.exc_info is not None) for r in caplog.records]
    # The bug at error with its traceback; the two mistakes of the second query at info.
    assert levels == [(logging.ERROR, True), (logging.INFO, False), (logging.INFO, False)]
