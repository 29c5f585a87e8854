"""What a coordinator types becomes the right moments: the co-op's clock, daylight saving included."""

from __future__ import annotations

from datetime import date, time
from zoneinfo import ZoneInfo

import pytest

from coopbot.errors import UsageError
from coopbot.services.rosters.parsing import SlotSpec, parse_days, parse_spec

PARIS = ZoneInfo("Europe/Paris")
TODAY = date(2026, 12, 2)


def read(typed: str) -> SlotSpec:
    """What a coordinator typed after `/slots add`, on Wednesday 2 December 2026."""
    return parse_spec(typed.split(), TODAY)


def test_day_ranges_lists_and_french_names() -> None:
    assert parse_days("mon-fri") == frozenset(range(5))
    assert parse_days("sat,sun") == parse_days("sam,dim") == frozenset({5, 6})
    assert parse_days("fri-mon") == frozenset({4, 5, 6, 0})
    assert parse_days("Mercredi") == frozenset({2})


def test_a_weekday_lunch_over_two_weeks_is_ten_slots_at_11_30_paris() -> None:
    spec = read("mon-fri 11:30-14:30 x6 from 2026-12-07 to 2026-12-20")
    moments = spec.moments(PARIS)
    assert len(moments) == 10 and spec.seats == 6 and spec.zone is None
    assert all(starts.astimezone(PARIS).time() == time(11, 30) for starts, _ in moments)
    assert moments[0][0].isoformat() == "2026-12-07T10:30:00+00:00"


def test_the_same_slot_keeps_its_local_hours_across_the_change_to_summer_time() -> None:
    """Clocks go forward on Sunday 28 March 2027: Friday's 11:30 is 10:30 UTC, Monday's 09:30 UTC."""
    spec = read("fri,mon 11:30-14:30 x2 from 2027-03-26 to 2027-03-29")
    (friday, _), (monday, ends) = spec.moments(PARIS)
    assert (friday.isoformat(), monday.isoformat()) == ("2027-03-26T10:30:00+00:00", "2027-03-29T09:30:00+00:00")
    assert ends.astimezone(PARIS).time() == time(14, 30)


def test_a_night_ends_the_next_day_and_a_zone_and_no_dates_mean_the_next_seven_days() -> None:
    spec = read("sat 19:00-01:00 x4 zone B")
    [(starts, ends)] = spec.moments(PARIS)
    assert spec.zone == "B" and (spec.first, spec.last) == (TODAY, date(2026, 12, 8))
    assert (starts.isoformat(), ends.isoformat()) == ("2026-12-05T18:00:00+00:00", "2026-12-06T00:00:00+00:00")


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("mon 11:30-14:30", "rosters.bad_form"),
        ("monday-ish 11:30-14:30 x2", "rosters.bad_days"),
        ("mon 11:30-11:30 x2", "rosters.bad_hours"),
        ("mon 11:30-14:30 x0", "rosters.bad_seats"),
        ("mon 11:30-14:30 x51", "rosters.bad_seats"),
        ("mon 11:30-14:30 x2 from tomorrow", "rosters.bad_date"),
        ("mon 11:30-14:30 x2 from 2026-12-07 to 2027-06-01", "rosters.bad_range"),
        ("mon 11:30-14:30 x2 zone", "rosters.bad_form"),
        ("mon 11:30-14:30 x2 by 2026-12-07", "rosters.bad_form"),
    ],
)
def test_what_cannot_be_read_is_refused_with_the_part_that_was_wrong(typed: str, key: str) -> None:
    with pytest.raises(UsageError) as refused:
        parse_spec(typed.split(), TODAY)
    assert refused.value.key == key
