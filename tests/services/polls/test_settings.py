"""The co-op's governed settings: exact values, history, and the split that cannot go negative."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from coopbot.config import Config
from coopbot.errors import CoopError, NotFound, UsageError
from coopbot.models import AuditEntry, Member, Setting
from coopbot.money import MAX_CENTS
from coopbot.services.polls import settings
from tests.conftest import Coop


def refused(key: str, value: str) -> UsageError:
    with pytest.raises(UsageError) as info:
        settings.governed(key).parse(value)
    return info.value


@given(st.integers(min_value=0, max_value=MAX_CENTS), st.sampled_from([".", ","]))
def test_money_is_parsed_exactly_to_the_cent(cents: int, separator: str) -> None:
    typed = f"{cents // 100}{separator}{cents % 100:02d}"
    assert settings.governed("equity_threshold").parse(typed) == str(cents)


def test_money_accepts_what_people_type_and_refuses_fractions_of_cents() -> None:
    parse = settings.governed("base_pay_per_hour").parse
    assert parse("12") == "1200"
    assert parse("12,5") == "1250"
    assert parse("€ 12.50") == "1250"
    assert parse("12.50 EUR") == "1250"
    assert parse("0.1") == "10"
    assert parse("0") == "0"
    for wrong in ("12.505", "-3", "twelve", "1.2.3", "", "nan", "1e3", "1,250", "1_000", "１２"):
        assert refused("base_pay_per_hour", wrong).key.startswith("ledger.amount_")


def test_percentages_stay_between_0_and_100() -> None:
    parse = settings.governed("legal_reserve_pct").parse
    assert parse("20") == "20"
    assert parse("20%") == "20"
    assert parse("12,50") == "12.5"
    assert parse("0") == "0"
    for wrong in ("101", "-1", "12.345", "lots"):
        assert refused("legal_reserve_pct", wrong).params["expected"] == "0–100"


def test_policy_timeout_vetoes_and_weights() -> None:
    assert settings.governed("offer_policy").parse("Rotation") == "rotation"
    assert refused("offer_policy", "lottery").key == "settings.bad_value"
    assert settings.governed("offer_timeout").parse("90") == "90"
    assert settings.governed("offer_timeout").parse("2m") == "120"
    assert refused("offer_timeout", "5").key == "settings.bad_value"
    assert refused("offer_timeout", "2d").key == "settings.bad_value"
    assert settings.governed("block_vetoes").parse("non") == "false"
    assert settings.governed("block_vetoes").parse("TRUE") == "true"
    assert settings.governed("weight.repair").parse("1,5") == "1.5"
    assert settings.governed("weight.newkind").parse("0.125") == "0.125"
    assert refused("weight.repair", "0.0001").key == "settings.bad_value"
    assert refused("weight.repair", "-1").key == "settings.bad_value"


def test_unknown_keys_and_bad_kinds_say_what_can_be_set() -> None:
    with pytest.raises(UsageError) as info:
        settings.governed("dividend_pct")
    assert info.value.key == "settings.unknown_key"
    assert "legal_reserve_pct" in info.value.params["keys"]
    assert "weight.KIND" in info.value.params["keys"]
    with pytest.raises(UsageError) as info:
        settings.governed("weight.two words")
    assert info.value.key == "settings.bad_kind"


async def test_defaults_come_from_config_then_votes_take_over(coop: Coop) -> None:
    now = coop.clock.now()
    config = coop.bot.config
    with coop.session() as session:
        assert settings.current(session, config, "legal_reserve_pct", now) == "15"
        assert settings.current(session, config, "dividend_pct", now) == "60"
        assert settings.current(session, config, "offer_policy", now) == "broadcast"
        assert settings.current(session, config, "weight.delivery", now) == "1"
        assert settings.current(session, config, "weight.unheard_of", now) == "0"
        settings.apply(session, config, "legal_reserve_pct", "20", now)
    later = now + timedelta(minutes=1)
    with coop.session() as session:
        assert settings.current(session, config, "legal_reserve_pct", later) == "20"
        assert settings.current(session, config, "dividend_pct", later) == "55"
        # Before the change took effect, the old value was in force.
        assert settings.current(session, config, "legal_reserve_pct", now - timedelta(seconds=1)) == "15"


async def test_latest_change_wins_and_history_is_kept(coop: Coop) -> None:
    now = coop.clock.now()
    config = coop.bot.config
    with coop.session() as session:
        settings.apply(session, config, "offer_policy", "rotation", now)
        settings.apply(session, config, "offer_policy", "broadcast", now + timedelta(hours=1))
        settings.apply(session, config, "offer_policy", "rotation", now + timedelta(hours=2))
    with coop.session() as session:
        assert settings.current(session, config, "offer_policy", now + timedelta(minutes=90)) == "broadcast"
        assert settings.current(session, config, "offer_policy", now + timedelta(hours=3)) == "rotation"
        assert len(session.scalars(select(Setting).where(Setting.key == "offer_policy")).all()) == 3


async def test_dividend_can_never_go_negative(coop: Coop) -> None:
    now = coop.clock.now()
    config = coop.bot.config
    with coop.session() as session:
        settings.apply(session, config, "development_fund_pct", "70", now)
        with pytest.raises(UsageError) as info:
            settings.apply(session, config, "legal_reserve_pct", "31", now)
        assert info.value.key == "settings.dividend_negative"
        assert info.value.params["most"] == "30"
        settings.apply(session, config, "legal_reserve_pct", "30", now)
        assert settings.current(session, config, "dividend_pct", now) == "0"


async def test_snapshot_is_plain_integers(coop: Coop) -> None:
    now = coop.clock.now()
    config = coop.bot.config
    with coop.session() as session:
        settings.apply(session, config, "legal_reserve_pct", "17.5", now)
        settings.apply(session, config, "equity_threshold", "1500,25", now)
        settings.apply(session, config, "weight.repair", "2.125", now)
        settings.apply(session, config, "weight.cargo_bike", "1.5", now)
        settings.apply(session, config, "offer_timeout", "300", now)
        snap = settings.snapshot(session, config, now)
    assert snap["legal_reserve_bp"] == 1750
    assert snap["development_fund_bp"] == 2500
    assert snap["dividend_bp"] == 5750
    assert snap["equity_threshold_cents"] == 150025
    assert snap["base_pay_per_hour_cents"] == 0
    assert snap["weights"]["repair"] == 2125
    assert snap["weights"]["cargo_bike"] == 1500
    assert snap["weights"]["delivery"] == 1000
    assert snap["offer_policy"] == "broadcast"
    assert snap["offer_timeout"] == 300
    assert snap["block_vetoes"] is True
    assert all(isinstance(v, int) for v in snap["weights"].values())


async def test_every_change_is_audited_with_old_and_new(coop: Coop) -> None:
    now = coop.clock.now()
    config = coop.bot.config
    with coop.session() as session:
        settings.apply(session, config, "base_pay_per_delivery", "3.40", now)
    with coop.session() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "setting.changed")).one()
        assert entry.details == {"key": "base_pay_per_delivery", "old": "0", "new": "340", "poll": None}


async def test_binding_actions_run_and_are_audited(coop: Coop) -> None:
    seen: list[str] = []

    def parse(value: str) -> str:
        if not value.startswith("#"):
            raise UsageError("settings.bad_value", setting="test_action", expected="#12")
        return value

    settings.register_action("test_action", parse, lambda s, c, v, n, p: seen.append(v))
    try:
        config = coop.bot.config
        assert settings.is_restricted(config, "test_action")
        assert not settings.is_restricted(config, "legal_reserve_pct")
        with coop.session() as session:
            settings.apply(session, config, "test_action", "#7", coop.clock.now())
            with pytest.raises(UsageError):
                settings.apply(session, config, "test_action", "7", coop.clock.now())
        assert seen == ["#7"]
        with coop.session() as session:
            assert session.scalars(select(Setting)).all() == []
            actions = session.scalars(select(AuditEntry).where(AuditEntry.action == "setting.action")).all()
            assert [a.details["value"] for a in actions] == ["#7"]
    finally:
        del settings.GOVERNED["test_action"]


def test_config_can_restrict_any_setting(coop: Coop) -> None:
    config = coop.bot.config.model_copy(deep=True)
    config.polls.restricted_settings = ["offer_policy", "weight.*"]
    assert settings.is_restricted(config, "offer_policy")
    assert settings.is_restricted(config, "weight.repair")
    assert not settings.is_restricted(config, "equity_threshold")


# --- one gate: what a poll proposes is what its close can apply ---------------------------------


async def test_a_binding_actions_own_rules_refuse_a_value_when_proposed_and_when_applied(coop: Coop) -> None:
    seen: list[str] = []
    known = {"#7"}

    def must_be_known(session: Session, config: Config, value: str, now: datetime) -> None:
        if value not in known:
            raise NotFound("members.no_such_member", ref=value)

    settings.register_action(
        "test_checked", lambda value: value.strip(), lambda s, c, v, n, p: seen.append(v), check=must_be_known
    )
    try:
        with coop.session() as session:
            assert settings.validate(session, coop.bot.config, "test_checked", "#7", coop.clock.now()) == (
                "test_checked",
                "#7",
            )
            with pytest.raises(NotFound):
                settings.validate(session, coop.bot.config, "test_checked", "#8", coop.clock.now())
        known.clear()  # what was true when proposed no longer is at the close
        with coop.session() as session, pytest.raises(NotFound):
            settings.apply(session, coop.bot.config, "test_checked", "#7", coop.clock.now())
        assert seen == []
    finally:
        del settings.GOVERNED["test_checked"]


async def test_a_member_to_remove_must_be_an_active_member_now(coop: Coop) -> None:
    coop.member("Alice", "admin")
    bob = coop.member_id(coop.member("Bob"))
    zoe = coop.member_id(coop.member("Zoé"))
    with coop.session() as session:
        gone = session.get_one(Member, zoe)
        gone.active, gone.left_at = False, coop.clock.now()

    def refusal(value: str) -> tuple[str, dict[str, object]]:
        with coop.session() as session, pytest.raises(CoopError) as info:
            settings.validate(session, coop.bot.config, "remove_member", value, coop.clock.now())
        return info.value.key, info.value.params

    with coop.session() as session:
        assert settings.validate(session, coop.bot.config, "remove_member", f"m-{bob}", coop.clock.now()) == (
            "remove_member",
            f"#{bob}",
        )
        assert settings.validate(session, coop.bot.config, "remove_member", "bob", coop.clock.now())[1] == "bob"
    assert refusal("#99999999999999999999") == ("members.no_such_member", {"ref": "#99999999999999999999"})
    assert refusal(f"#{2**31}") == ("members.no_such_member", {"ref": f"#{2**31}"})
    assert refusal("#41") == ("members.no_such_member", {"ref": "#41"})
    assert refusal("Nobody") == ("members.no_such_member", {"ref": "Nobody"})
    assert refusal(f"#{zoe}") == ("data.already_left", {"number": zoe})
    assert refusal("#1") == ("data.last_admin_removal", {})
    assert refusal("#²")[0] == "members.bad_number"
    assert refusal("#" + "9" * 5000) == ("data.remove_bad_ref", {})


# --- the price rules -------------------------------------------------------------------------


def test_price_rules_are_governed_and_read_into_one_canonical_text() -> None:
    assert settings.governed("price.base").parse("4,50 €") == "450"
    assert settings.governed("price.heavy").parse("0") == "0"
    assert settings.governed("price.zones").parse(" A :75001,Le Marais ;B: 75011 ") == "A: 75001, Le Marais; B: 75011"
    assert settings.governed("price.table").parse("C-A 5,5") == "A-C 5.50"
    assert settings.governed("price.evening_hours").parse("19:00 - 23:30") == "19:00-23:30"
    assert settings.governed("price.urgent_minutes").parse("045") == "45"
    assert settings.governed("price.heavy_words").parse("Cargo lourd, ENCOMBRANT") == "cargo, lourd, encombrant"
    # A vote cannot send an empty value: "none" empties a list-like rule.
    assert settings.governed("price.table").parse("none") == ""
    assert settings.governed("price.zones").parse("aucune") == ""
    assert not any(settings.is_restricted(Config(), key) for key in settings.GOVERNED if key.startswith("price."))


@pytest.mark.parametrize(
    ("key", "value", "sentence"),
    [("price.base", "4.5055", "ledger.amount_cents"), ("price.zones", "A 75001", "prices.bad_zones"),
     ("price.zones", "A: 75001; a: 75002", "prices.zone_twice"), ("price.table", "A-A 2", "prices.bad_table"),
     ("price.night_hours", "11pm-6am", "prices.bad_hours"), ("price.urgent_minutes", "0", "prices.bad_minutes")],
)  # fmt: skip
def test_a_price_rule_that_cannot_be_read_is_refused_with_its_sentence(key: str, value: str, sentence: str) -> None:
    assert refused(key, value).key == sentence


def test_price_rules_start_from_the_configuration_in_cents() -> None:
    config = Config.model_validate({"prices": {"base": 4.2, "heavy": 3, "zones": "A:75001", "urgent_minutes": 30}})
    assert settings.default(config, "price.base") == "420"
    assert settings.default(config, "price.heavy") == "300"
    assert settings.default(config, "price.zones") == "A: 75001"
    assert settings.default(config, "price.urgent_minutes") == "30"
    assert settings.default(config, "price.table") == ""


async def test_the_table_and_the_zones_must_agree(coop: Coop) -> None:
    config, now = coop.bot.config, coop.clock.now()
    with coop.session() as session:
        settings.apply(session, config, "price.zones", "A: 75001; B: 75011; C: 93100", now)
        with pytest.raises(UsageError) as info:
            settings.validate(session, config, "price.table", "A-D 5", now)
        assert (info.value.key, info.value.params) == ("prices.unknown_zone", {"zone": "D"})
        settings.apply(session, config, "price.table", "A-C 5", now)
        with pytest.raises(UsageError) as info:
            settings.validate(session, config, "price.zones", "A: 75001; B: 75011, 93100", now)
        assert (info.value.key, info.value.params) == ("prices.zone_in_table", {"zone": "C"})
        settings.apply(session, config, "price.table", "none", now)
        assert settings.validate(session, config, "price.zones", "A: 75001", now) == ("price.zones", "A: 75001")


def test_price_rules_read_in_each_language() -> None:
    nbsp = "\u00a0"
    assert settings.describe("price.base", "450", "en", "EUR") == "€4.50"
    assert settings.describe("price.base", "450", "fr", "EUR") == f"4,50{nbsp}€"
    assert settings.describe("price.table", "A-C 5.50; B-C 3.00", "fr", "EUR") == f"A-C 5,50{nbsp}€ · B-C 3,00{nbsp}€"
    assert settings.describe("price.urgent_minutes", "45", "en", "EUR") == "45 min"
    assert settings.describe("price.zones", "", "fr", "EUR") == "néant"
    assert settings.describe("price.zones", "A: 75001", "en", "EUR") == "A: 75001"


async def test_an_amount_voted_in_is_the_amount_proposed(coop: Coop) -> None:
    """A poll keeps the amount in cents; at its close it is applied as such, not read again as euros."""
    alice, bob = coop.member("Alice"), coop.member("Bob")
    await coop.say(alice, "/propose Pay each delivery? --closes 1d --sets base_pay_per_delivery=3.40")
    await coop.say(alice, "/vote P-1 agree")
    await coop.say(bob, "/vote P-1 agree")
    await coop.tick(days=1)
    with coop.session() as session:
        assert settings.current(session, coop.bot.config, "base_pay_per_delivery", coop.clock.now()) == "340"


def every_value(session: Session, config: Config, now: datetime, keys: list[str]) -> dict[str, tuple[str, str]]:
    """Each key's value by `current` (a query each) and by one `in_force` read, side by side."""
    in_force = settings.in_force(session, config, now)
    return {key: (settings.current(session, config, key, now), in_force.value(key)) for key in keys}


async def test_one_read_of_the_settings_answers_every_key_as_current_does(coop: Coop) -> None:
    config = coop.bot.config
    now = coop.clock.now()
    plain_keys = [key for key, entry in settings.GOVERNED.items() if entry.action is None and "*" not in key]
    keys = [*plain_keys, "dividend_pct", "weight.delivery", "weight.cargo", "weight.unheard_of"]
    with coop.session() as session:
        before = every_value(session, config, now, keys)
        for key, value in [("legal_reserve_pct", "20"), ("offer_policy", "rotation"), ("weight.delivery", "2"),
                           ("weight.cargo", "1.5"), ("public.audit", "off"), ("price.base", "7.50")]:  # fmt: skip
            settings.apply(session, config, key, value, now)
    later = now + timedelta(minutes=1)
    with coop.session() as session:
        after = every_value(session, config, later, keys)
        row = settings.in_force(session, config, later).row("offer_policy")
        assert row is not None and row.value == "rotation"
        assert settings.in_force(session, config, later).row("offer_timeout") is None
    assert all(by_current == by_snapshot for by_current, by_snapshot in before.values()), before
    assert all(by_current == by_snapshot for by_current, by_snapshot in after.values()), after
    changed = {key for key in keys if before[key] != after[key]}
    assert changed == {"legal_reserve_pct", "dividend_pct", "offer_policy", "weight.delivery", "weight.cargo",
                       "public.audit", "price.base"}  # fmt: skip
    assert after["dividend_pct"] == ("55", "55") and after["price.base"] == ("750", "750")
