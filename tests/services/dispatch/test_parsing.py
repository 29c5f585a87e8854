"""What coordinators type becomes exactly the job they meant, or a clear refusal."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coopbot.errors import UsageError
from coopbot.services.dispatch.parsing import BadLine, parse_deadline, parse_job, parse_job_ref, parse_jobs, parse_price

PARIS = ZoneInfo("Europe/Paris")
# 09:00 in Paris (UTC+1 in November).
NOW = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def test_the_example_from_the_help_reads_field_by_field() -> None:
    spec = parse_job(
        "Boulangerie Martin, 3 rue Paul Bert -> 12 rue Oberkampf by 12:30 price 6.50 note fragile", NOW, PARIS
    )
    assert spec.pickup == "Boulangerie Martin, 3 rue Paul Bert"
    assert spec.dropoff == "12 rue Oberkampf"
    assert spec.deadline == datetime(2026, 11, 2, 12, 30, tzinfo=PARIS)
    assert spec.price_cents == 650
    assert spec.note == "fragile"


def test_options_are_optional_and_may_come_in_any_order_and_in_french() -> None:
    bare = parse_job("Shop -> Home", NOW, PARIS)
    assert (bare.pickup, bare.dropoff, bare.deadline, bare.price_cents, bare.note) == ("Shop", "Home", None, None, "")
    french = parse_job("Épicerie → 5 rue X prix 6,50 avant 12h30 note sonner deux fois, by the door", NOW, PARIS)
    assert french.price_cents == 650
    assert french.deadline == datetime(2026, 11, 2, 12, 30, tzinfo=PARIS)
    assert french.note == "sonner deux fois, by the door"


def test_a_time_already_past_today_means_tomorrow() -> None:
    assert parse_deadline("08:15", NOW, PARIS) == datetime(2026, 11, 3, 8, 15, tzinfo=PARIS)
    assert parse_deadline("9h", NOW, PARIS) == datetime(2026, 11, 3, 9, 0, tzinfo=PARIS)
    assert parse_deadline("9h01", NOW, PARIS) == datetime(2026, 11, 2, 9, 1, tzinfo=PARIS)


def test_a_named_day_is_read_in_the_coops_timezone() -> None:
    # 1 December 2026 12:30 in Paris is 11:30 UTC.
    assert parse_deadline("2026-12-01 12:30", NOW, PARIS) == datetime(2026, 12, 1, 11, 30, tzinfo=UTC)
    assert parse_deadline("01/12 12:30", NOW, PARIS) == datetime(2026, 12, 1, 11, 30, tzinfo=UTC)


@pytest.mark.parametrize("text", ["25:00", "noon", "2026-13-01 10:00", "12:30 tomorrow", "12:61"])
def test_what_is_not_a_time_is_refused(text: str) -> None:
    with pytest.raises(UsageError) as refused:
        parse_deadline(text, NOW, PARIS)
    assert refused.value.key == "dispatch.bad_deadline"


def test_a_named_day_in_the_past_is_refused() -> None:
    with pytest.raises(UsageError) as refused:
        parse_deadline("2026-11-01 12:00", NOW, PARIS)
    assert refused.value.key == "dispatch.deadline_past"


@pytest.mark.parametrize(
    ("text", "cents"),
    [
        ("6.50", 650),
        ("6,50", 650),
        ("6", 600),
        ("6.5", 650),
        ("0.05", 5),
        ("€6.50", 650),
        ("6.50 EUR", 650),
        ("0", 0),
    ],
)
def test_prices_are_exact_cents(text: str, cents: int) -> None:
    assert parse_price(text) == cents


@pytest.mark.parametrize(
    "text", ["6.505", "-1", "abc", "6.5.0", "1e3", "NaN", "1_000", "", "99999999999", "6.500", "1,250", "٦", "６"]
)
def test_prices_that_would_be_guesses_are_refused_like_any_amount(text: str) -> None:
    with pytest.raises(UsageError) as refused:
        parse_price(text)
    assert refused.value.key.startswith("ledger.amount_")


@given(st.integers(min_value=0, max_value=10_000_000), st.sampled_from([".", ","]))
def test_every_amount_written_with_two_decimals_reads_back_to_the_cent(cents: int, mark: str) -> None:
    assert parse_price(f"{cents // 100}{mark}{cents % 100:02d}") == cents


@pytest.mark.parametrize("line", ["Shop Home", "-> Home", "Shop ->", "Shop -> by 12:30"])
def test_a_job_needs_a_pickup_and_a_dropoff(line: str) -> None:
    with pytest.raises(UsageError) as refused:
        parse_job(line, NOW, PARIS)
    assert refused.value.key == "dispatch.bad_job"


def test_an_option_given_twice_is_refused() -> None:
    with pytest.raises(UsageError) as refused:
        parse_job("Shop -> Home price 5 prix 6", NOW, PARIS)
    assert refused.value.key == "dispatch.repeated_option"


def test_several_jobs_one_per_line_even_pasted_with_their_commands() -> None:
    specs = parse_jobs("A -> B\n\n/newjob C -> D price 3\n!newjob E -> F", NOW, PARIS)
    assert [(s.pickup, s.dropoff) for s in specs] == [("A", "B"), ("C", "D"), ("E", "F")]
    assert specs[1].price_cents == 300


def test_one_bad_line_refuses_the_whole_message_and_names_the_line() -> None:
    with pytest.raises(BadLine) as refused:
        parse_jobs("A -> B\nC -> D price six\nE -> F", NOW, PARIS)
    assert refused.value.line == 2
    assert refused.value.problem.key == "ledger.amount_bad"


def test_too_many_jobs_in_one_message_are_refused() -> None:
    with pytest.raises(UsageError) as refused:
        parse_jobs("\n".join(f"A{i} -> B" for i in range(51)), NOW, PARIS)
    assert refused.value.key == "dispatch.too_many_jobs"


@pytest.mark.parametrize("ref", ["J-12", "j-12", "J12", "12", "#12", " J-12 "])
def test_job_references_are_forgiving(ref: str) -> None:
    assert parse_job_ref(ref) == 12


@pytest.mark.parametrize("ref", ["P-12", "J-", "twelve", "J-1-2"])
def test_other_references_are_refused(ref: str) -> None:
    with pytest.raises(UsageError) as refused:
        parse_job_ref(ref)
    assert refused.value.key == "dispatch.bad_ref"
