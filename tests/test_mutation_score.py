"""`make mutation`'s verdict: the score, and survivors checked against the equivalents list."""

from __future__ import annotations

from tests.mutation_score import listed_equivalents, statuses, verdict

KILLED = "services.domain.order.xǁSalesOrderǁpack__mutmut_{}"
EQUIVALENT = "services.domain.order.xǁSalesOrderǁchange_line_quantity__mutmut_28"
OTHER = "services.domain.errors.x_not_found__mutmut_3"


def nineteen_killed_and(name: str, status: str) -> dict[str, str]:
    found = {KILLED.format(n): "killed" for n in range(1, 20)}
    found[name] = status
    return found


def test_mutmut_results_are_read_name_by_name_whatever_the_status() -> None:
    results = (
        f"    {KILLED.format(1)}: killed\n"
        f"    {EQUIVALENT}: survived\n"
        f"    {OTHER}: no tests\n"
        "some other line mutmut printed\n"
    )

    assert statuses(results) == {
        KILLED.format(1): "killed",
        EQUIVALENT: "survived",
        OTHER: "no tests",
    }


def test_the_list_of_equivalents_is_every_mutant_name_in_backquotes() -> None:
    text = f"| `{EQUIVALENT}` | `a > b` becomes `a >= b` | ... |\n| `{OTHER}` | ... |\n"

    assert listed_equivalents(text) == {EQUIVALENT, OTHER}


def test_a_listed_survivor_at_the_minimum_score_passes_and_the_score_is_printed() -> None:
    lines, status = verdict(nineteen_killed_and(EQUIVALENT, "survived"), {EQUIVALENT})

    assert status == 0
    assert lines[0] == "mutation score: 19 / 20 killed (95.0%); 19 killed, 1 survived"


def test_a_survivor_that_is_not_listed_fails_and_is_named() -> None:
    lines, status = verdict(nineteen_killed_and(OTHER, "survived"), {EQUIVALENT})

    assert status == 1
    assert f"  {OTHER}: survived" in lines


def test_a_mutant_no_test_reaches_counts_as_a_survivor() -> None:
    lines, status = verdict(nineteen_killed_and(OTHER, "no tests"), set())

    assert status == 1
    assert f"  {OTHER}: no tests" in lines


def test_a_listed_mutant_that_is_now_killed_fails_as_a_stale_list() -> None:
    lines, status = verdict(nineteen_killed_and(EQUIVALENT, "killed"), {EQUIVALENT})

    assert status == 1
    assert f"  {EQUIVALENT}: killed" in lines


def test_a_score_below_the_minimum_fails_even_when_every_survivor_is_listed() -> None:
    found = {KILLED.format(n): "killed" for n in range(1, 19)}
    found |= {EQUIVALENT: "survived", OTHER: "survived"}

    lines, status = verdict(found, {EQUIVALENT, OTHER})

    assert status == 1
    assert lines[0].startswith("mutation score: 18 / 20 killed (90.0%)")
    assert "the score is below 95%" in lines
