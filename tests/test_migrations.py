"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from coopbot.db import alembic_config, make_engine, upgrade
from coopbot.models import Base


def upgraded_from(db_url: str, revision: str, *statements: str) -> Engine:
    """A co-op's database installed at `revision`, holding what `statements` wrote, then upgraded."""
    engine = make_engine(db_url)
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)
        for statement in statements:
            connection.execute(text(statement))
    upgrade(engine)
    return engine


def test_migrations_match_the_models(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    upgrade(engine)  # idempotent
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert diff == []


def test_an_installed_database_keeps_its_messages_and_money_through_an_upgrade(db_url: str) -> None:
    """A co-op running the first schema upgrades with its outbox queue and ledger intact;
    only the base pay lines its closes wrote go, as they are now read from the allocations."""
    when = "'2026-11-01 09:00:00'"
    engine = upgraded_from(
        db_url,
        "0001",
        "INSERT INTO outbox (key, platform, chat_id, private, text, buttons, status, attempts, next_attempt_at, "
        f"created_at) VALUES ('queued-before', 'console', 'ana', true, 'Hello', '[]', 'pending', 0, {when}, "
        f"{when})",
        "INSERT INTO period (id, label, starts_at, ends_at, status, settings, totals) VALUES "
        f"(1, '2026-10', {when}, {when}, 'closed', '{{}}', '{{}}')",
        "INSERT INTO ledger_entry (period_id, kind, amount_cents, note, created_at, source_ref) VALUES "
        f"(1, 'income', 50000, 'contracts', {when}, NULL), (1, 'base_pay', 9325, '', {when}, 'base_pay:1:1')",
    )
    with engine.connect() as connection:
        outbox = connection.execute(text("SELECT key, text, render FROM outbox")).all()
        ledger = connection.execute(text("SELECT kind, amount_cents FROM ledger_entry")).all()
    engine.dispose()
    assert [tuple(row) for row in outbox] == [("queued-before", "Hello", None)]
    assert [tuple(row) for row in ledger] == [("income", 50000)]


def test_jobs_and_settings_come_through_the_customers_upgrade(db_url: str) -> None:
    """A co-op on 0004 upgrades to customers' orders: its jobs stay coordinators' jobs (no customer,
    no quote, no proof), its settings keep their values, and a setting may now list many zones."""
    when = "'2026-11-01 09:00:00'"
    engine = upgraded_from(
        db_url,
        "0004",
        "INSERT INTO job (id, pickup, dropoff, note, status, created_at, updated_at, policy, round) VALUES "
        f"(1, 'Boulangerie', '12 rue Oberkampf', '', 'delivered', {when}, {when}, 'broadcast', 0)",
        f"INSERT INTO setting (key, value, effective_at) VALUES ('dispatch.policy', 'rotation', {when})",
    )
    zones = "; ".join(f"Z{i}: {75001 + i}, {93001 + i}, {94001 + i}" for i in range(40))
    with engine.begin() as connection:
        connection.execute(text(f"INSERT INTO setting (key, value, effective_at) VALUES ('price.zones', :z, {when})"),
                           {"z": zones})  # fmt: skip
        job = connection.execute(text("SELECT customer_id, quote, proof_tries, status FROM job")).one()
        values = connection.execute(text("SELECT key, value FROM setting ORDER BY id")).all()
    engine.dispose()
    assert tuple(job) == (None, None, 0, "delivered")
    assert [tuple(row) for row in values] == [("dispatch.policy", "rotation"), ("price.zones", zones)]
    assert len(zones) > 200


def test_jobs_come_through_the_api_keys_upgrade_and_a_retry_key_is_unique_per_customer(db_url: str) -> None:
    """A co-op on 0005 upgrades to the web door: its orders keep everything and have no shop reference,
    no customer has a key or a webhook yet, and one customer cannot record one Idempotency-Key twice."""
    when = "'2026-11-01 09:00:00'"
    engine = upgraded_from(
        db_url,
        "0005",
        f"INSERT INTO member (id, name, role, active, joined_at, notify, mute_announcements, hide_in_charts, "
        f"available, address) VALUES (1, 'Boulangerie Martin', 'customer', true, {when}, 'both', false, false, "
        f"false, '3 rue Paul Bert, 75011')",
        "INSERT INTO job (id, pickup, dropoff, note, status, created_at, updated_at, policy, round, customer_id, "
        f"price_cents, proof_tries) VALUES (1, '75011', '93100', '', 'delivered', {when}, {when}, 'broadcast', 0, "
        "1, 650, 0)",
    )
    record = ("INSERT INTO idempotent_request (customer_id, key, fingerprint, status, body, created_at) VALUES "
              f"(1, 'retry-1', 'f', 201, '{{}}', {when})")  # fmt: skip
    with engine.begin() as connection:
        job = connection.execute(text("SELECT customer_id, price_cents, status, external_ref FROM job")).one()
        keys = connection.execute(text("SELECT count(*) FROM api_key")).scalar()
        hooks = connection.execute(text("SELECT webhook_url, webhook_secret FROM member")).all()
        connection.execute(text(record))
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text(record))
    engine.dispose()
    assert (tuple(job), keys, [tuple(row) for row in hooks]) == ((1, 650, "delivered", None), 0, [(None, None)])


def test_shares_come_through_the_payouts_upgrade_unpaid_and_nobody_has_an_iban(db_url: str) -> None:
    """A co-op on 0006 upgrades to payouts: its members and allocations keep everything, nobody has an
    IBAN, and no share has a payment day or method until the treasurer marks it."""
    when = "'2026-11-01 09:00:00'"
    engine = upgraded_from(
        db_url,
        "0006",
        f"INSERT INTO member (id, name, role, active, joined_at, notify, mute_announcements, hide_in_charts, "
        f"available, public_name) VALUES (1, 'Chloé', 'member', true, {when}, 'both', false, false, false, false)",
        "INSERT INTO period (id, label, starts_at, ends_at, status, settings, totals) VALUES "
        f"(1, '2026-10', {when}, {when}, 'closed', '{{}}', '{{}}')",
        "INSERT INTO allocation (period_id, member_id, points_milli, dividend_cents, base_pay_cents, paid) "
        "VALUES (1, 1, 2000, 27000, 8125, false)",
    )
    with engine.begin() as connection:
        member = connection.execute(text("SELECT name, iban_sealed FROM member")).one()
        share = connection.execute(text(
            "SELECT dividend_cents, base_pay_cents, paid, paid_at, paid_method FROM allocation")).one()
    engine.dispose()
    assert (tuple(member), tuple(share)) == (("Chloé", None), (27000, 8125, False, None, None))


def test_a_closed_period_comes_through_the_funds_upgrade_and_nothing_is_spent(db_url: str) -> None:
    """A co-op on 0007 upgrades to the funds: its closed periods keep the buckets the funds are
    read from, nothing has been spent, and one poll can spend at most once."""
    when = "'2026-11-01 09:00:00'"
    engine = upgraded_from(
        db_url,
        "0007",
        "INSERT INTO period (id, label, starts_at, ends_at, status, settings, totals) VALUES "
        f"(1, '2026-10', {when}, {when}, 'closed', '{{}}', '{{\"development_fund\": 90000}}')",
    )
    with engine.begin() as connection:
        totals = connection.execute(text("SELECT totals FROM period")).scalar_one()
        spent = connection.execute(text("SELECT count(*) FROM fund_spending")).scalar_one()
        poll = (
            "INSERT INTO poll (id, title, kind, options, secret, live_results, quorum_pct, threshold_pct, "
            f"created_at, closes_at, status, result) VALUES (1, 'Bikes', 'proposal', '[]', false, false, 0, 50, "
            f"{when}, {when}, 'closed', '{{}}')"
        )
        connection.execute(text(poll))
    spending = (
        "INSERT INTO fund_spending (fund, amount_cents, purpose, poll_id, spent_at) "
        f"VALUES ('development_fund', 320000, 'Bikes', 1, {when})"
    )
    with engine.begin() as connection:
        connection.execute(text(spending))
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text(spending))
    engine.dispose()
    assert ("90000" in str(totals), spent) == (True, 0)


def test_polls_come_through_the_ranked_upgrade_unranked(db_url: str) -> None:
    """A co-op on 0008 upgrades to ranked polls: its polls keep their kind and result, and have no seats."""
    when = "'2026-11-01 09:00:00'"
    engine = upgraded_from(
        db_url,
        "0008",
        "INSERT INTO poll (id, title, kind, options, secret, live_results, quorum_pct, threshold_pct, "
        f"created_at, closes_at, status, result) VALUES (1, 'Party?', 'single', '[\"June\", \"July\"]', false, "
        f"false, 0, 0, {when}, {when}, 'closed', '{{\"winners\": [2]}}')",
    )
    with engine.begin() as connection:
        poll = connection.execute(text("SELECT kind, seats, result FROM poll")).one()
    engine.dispose()
    assert (poll.kind, poll.seats, "[2]" in str(poll.result)) == ("single", None, True)


def test_members_and_polls_come_through_the_proxies_upgrade_with_no_proxy(db_url: str) -> None:
    """A co-op on 0009 upgrades to proxies: nobody has given one, and a giver's ballot in a poll
    can be marked as cast by proxy once only."""
    when = "'2026-11-01 09:00:00'"
    engine = upgraded_from(
        db_url,
        "0009",
        *(
            f"INSERT INTO member (id, name, role, active, joined_at, notify, mute_announcements, hide_in_charts, "
            f"available, public_name) VALUES ({n}, '{name}', 'member', true, {when}, 'both', false, false, false, "
            "false)"
            for n, name in ((1, "Chloé"), (2, "Dan"))
        ),
        "INSERT INTO poll (id, title, kind, options, secret, live_results, quorum_pct, threshold_pct, "
        f"created_at, closes_at, status, result) VALUES (1, 'Tyres?', 'proposal', '[]', false, false, 0, 50, "
        f"{when}, {when}, 'open', '{{}}')",
    )
    used = (
        "INSERT INTO proxy_vote (poll_id, giver_id, holder_id, cancelled, at) "
        f"VALUES (1, 2, 1, false, {when})"
    )
    with engine.begin() as connection:
        given = connection.execute(text("SELECT count(*) FROM proxy")).scalar_one()
        connection.execute(text(used))
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text(used))
    engine.dispose()
    assert given == 0


def test_members_come_through_the_colleges_upgrade_in_no_college(db_url: str) -> None:
    """A co-op on 0010 upgrades to colleges: every member keeps their role and is in no college
    (the default one, once the co-op names colleges)."""
    when = "'2026-11-01 09:00:00'"
    engine = upgraded_from(
        db_url,
        "0010",
        "INSERT INTO member (id, name, role, active, joined_at, notify, mute_announcements, hide_in_charts, "
        f"available, public_name) VALUES (1, 'Pia', 'member', true, {when}, 'both', false, false, false, false)",
    )
    with engine.begin() as connection:
        member = connection.execute(text("SELECT name, role, college FROM member")).one()
    engine.dispose()
    assert tuple(member) == ("Pia", "member", None)


def test_members_come_through_the_rosters_upgrade_with_no_slot_and_one_seat_each(db_url: str) -> None:
    """A co-op on 0011 upgrades to rosters: no slot is planned yet, and a member can hold
    only one seat on a slot."""
    when = "'2026-11-01 09:00:00'"
    engine = upgraded_from(
        db_url,
        "0011",
        "INSERT INTO member (id, name, role, active, joined_at, notify, mute_announcements, hide_in_charts, "
        f"available, public_name) VALUES (1, 'Pia', 'coordinator', true, {when}, 'both', false, false, false, "
        "false)",
    )
    seat = f"INSERT INTO slot_signup (slot_id, member_id, signed_at) VALUES (1, 1, {when})"
    with engine.begin() as connection:
        planned = connection.execute(text("SELECT count(*) FROM slot")).scalar_one()
        connection.execute(text(
            "INSERT INTO slot (id, starts_at, ends_at, seats, created_by, created_at) "
            f"VALUES (1, {when}, {when}, 2, 1, {when})"
        ))
        connection.execute(text(seat))
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text(seat))
    engine.dispose()
    assert planned == 0


def test_seats_come_through_the_fairness_upgrade_unasked_uncounted_and_with_no_feed(db_url: str) -> None:
    """A co-op on 0012 with a planned seat upgrades: the seat keeps its rider, nothing was asked
    or counted for it yet, no offer was made by the fairness rule, and no calendar address exists;
    a calendar token can be held by one feed only."""
    when = "'2026-11-01 09:00:00'"
    engine = upgraded_from(
        db_url,
        "0012",
        "INSERT INTO member (id, name, role, active, joined_at, notify, mute_announcements, hide_in_charts, "
        f"available, public_name) VALUES (1, 'Pia', 'coordinator', true, {when}, 'both', false, false, false, "
        "false)",
        "INSERT INTO slot (id, starts_at, ends_at, seats, created_by, created_at) "
        f"VALUES (1, {when}, {when}, 2, 1, {when})",
        f"INSERT INTO slot_signup (slot_id, member_id, signed_at) VALUES (1, 1, {when})",
    )
    feed = (
        "INSERT INTO calendar_feed (member_id, scope, generation, token_hash, created_at) "
        f"VALUES (1, '{{scope}}', 1, 'same-hash', {when})"
    )
    with engine.begin() as connection:
        seat = connection.execute(text(
            "SELECT member_id, noshow_asked_at, ended_at, worked_minutes, contribution_id FROM slot_signup"
        )).one()
        offers = connection.execute(text("SELECT count(*) FROM slot_offer")).scalar_one()
        feeds = connection.execute(text("SELECT count(*) FROM calendar_feed")).scalar_one()
        connection.execute(text(feed.format(scope="mine")))
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text(feed.format(scope="all")))
    engine.dispose()
    assert tuple(seat) == (1, None, None, None, None)
    assert (offers, feeds) == (0, 0)
