"""Domain failures: the code, message and facts (subject, position, current version) that
the API's edge turns into a client's error, exactly as each helper builds them."""

from __future__ import annotations

import pytest

from services.domain.errors import (
    DomainError,
    ErrorCode,
    Subject,
    not_found,
    require_positive,
    version_conflict,
)


def test_a_domain_error_reads_as_its_message_and_carries_every_fact_it_was_given() -> None:
    error = DomainError(
        ErrorCode.INSUFFICIENT_STOCK,
        "Only 3 left.",
        Subject.QUANTITY,
        index=2,
        current_version=9,
    )

    assert str(error) == "Only 3 left."
    assert (error.code, error.message, error.subject, error.index, error.current_version) == (
        ErrorCode.INSUFFICIENT_STOCK,
        "Only 3 left.",
        Subject.QUANTITY,
        2,
        9,
    )


def test_a_domain_error_given_only_a_code_and_message_is_about_nothing_in_particular() -> None:
    error = DomainError(ErrorCode.INVALID_INPUT, "No.")

    assert (error.subject, error.index, error.current_version) == (None, None, None)


def test_a_query_sees_the_code_of_a_domain_error_in_its_extensions() -> None:
    assert DomainError(ErrorCode.DUPLICATE, "Taken.").extensions == {"code": "DUPLICATE"}


def test_placing_a_failure_at_a_position_keeps_the_same_failure_and_sets_its_index() -> None:
    error = DomainError(ErrorCode.INVALID_QUANTITY, "Quantity must be positive.", Subject.QUANTITY)

    placed = error.at(3)

    assert placed is error
    assert (placed.code, placed.subject, placed.index) == (
        ErrorCode.INVALID_QUANTITY,
        Subject.QUANTITY,
        3,
    )


def test_not_found_names_what_is_missing_and_where_it_was_asked_for() -> None:
    error = not_found("Item 'BRASS-SCREW'", Subject.ITEM, 4)

    assert (error.code, error.message, error.subject, error.index) == (
        ErrorCode.NOT_FOUND,
        "Item 'BRASS-SCREW' not found.",
        Subject.ITEM,
        4,
    )
    assert error.current_version is None


def test_not_found_without_a_position_has_no_index() -> None:
    error = not_found("Sales order", Subject.ORDER)

    assert (error.code, error.message, error.subject, error.index) == (
        ErrorCode.NOT_FOUND,
        "Sales order not found.",
        Subject.ORDER,
        None,
    )


@pytest.mark.parametrize("quantity", [1, 2, 1_000_000])
def test_a_positive_quantity_is_accepted(quantity: int) -> None:
    require_positive(quantity)  # fails the test by raising INVALID_QUANTITY


@pytest.mark.parametrize("quantity", [0, -1])
def test_a_quantity_that_is_not_positive_is_refused_as_the_quantity_at_fault(
    quantity: int,
) -> None:
    with pytest.raises(DomainError) as caught:
        require_positive(quantity)

    error = caught.value
    assert (error.code, error.message, error.subject, error.index) == (
        ErrorCode.INVALID_QUANTITY,
        "Quantity must be a positive whole number.",
        Subject.QUANTITY,
        None,
    )


def test_a_version_conflict_against_the_clients_expected_version_blames_that_argument() -> None:
    error = version_conflict(7, 5)

    assert (error.code, error.message, error.subject, error.index, error.current_version) == (
        ErrorCode.VERSION_CONFLICT,
        "The sales order has changed; its current version is 7.",
        Subject.EXPECTED_VERSION,
        None,
        7,
    )


def test_a_version_conflict_without_an_expected_version_blames_no_argument() -> None:
    # The server's own retries ran out: nothing the client sent was wrong.
    error = version_conflict(7, None)

    assert (error.code, error.subject, error.current_version) == (
        ErrorCode.VERSION_CONFLICT,
        None,
        7,
    )
