"""Leaving means leaving: once a member has left, no text the co-op keeps names
them, however the name was typed.

People write "Zoé", "zoé", "ZOÉ", an old client sends the decomposed "Zoe" +
U+0301, and most texts use the given or the family name alone. Each of these
gives way to the member's pseudonym, as a whole word only: "Zoéline" and
"Martine" are other people, "de la" is French, and Bob Martin, who stays,
keeps his name.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from coopbot.models import (
    Announcement,
    AuditEntry,
    Contribution,
    Job,
    JobEvent,
    LedgerEntry,
    Member,
    OutboxMessage,
    Poll,
)
from coopbot.services.members import accounts as members_svc
from coopbot.services.money import periods
from tests.conftest import Coop

NFD_ZOE = "Zoe\u0301"
GONE = "former member #2"


def write(coop: Coop, texts: dict[str, str], details: dict[str, Any] | None = None) -> dict[str, int]:
    """One free text per place the co-op keeps one, written by Alice (#1); returns the rows' ids."""
    now = coop.clock.now()
    with coop.session() as s:
        period = periods.current_period(s, coop.bot.config, now)
        job = Job(pickup=texts.get("pickup", "Boulangerie Louise"), dropoff=texts.get("dropoff", "3 quai Est"),
                  note=texts.get("job", ""), status="delivered", assignee_id=1, created_by=1, created_at=now,
                  updated_at=now)
        announcement = Announcement(author_id=1, text=texts.get("announcement", "Hello"), created_at=now)
        poll = Poll(title=texts.get("poll", "Buy a cargo bike?"), kind="proposal", quorum_pct=50, threshold_pct=50,
                    proposer_id=1, created_at=now, closes_at=now + timedelta(days=2))
        contribution = Contribution(member_id=1, period_id=period.id, kind="delivery", quantity_milli=1000,
                                    points_milli=1000, status="approved", source="manual",
                                    note=texts.get("contribution", ""), created_at=now)
        entry = LedgerEntry(period_id=period.id, kind="expense", amount_cents=3000, note=texts.get("ledger", ""),
                            created_by=1, created_at=now)
        # Owed to Alice, not due before tomorrow: still pending when the erasure runs.
        pending = OutboxMessage(key="notice-for-alice", platform="console", chat_id="alice", private=True,
                                member_id=1, text=texts.get("outbox", "Hi"), status="pending",
                                next_attempt_at=now + timedelta(days=1), created_at=now)
        audit = AuditEntry(at=now, action="member.note", actor_id=1, details=details or {})
        s.add_all([job, announcement, poll, contribution, entry, pending, audit])
        s.flush()
        event = JobEvent(job_id=job.id, at=now, kind="offered", details=details or {})
        s.add(event)
        s.flush()
        return {"job": job.id, "announcement": announcement.id, "poll": poll.id, "contribution": contribution.id,
                "ledger": entry.id, "outbox": pending.id, "audit": audit.id, "event": event.id}


def read(coop: Coop, ids: dict[str, int]) -> dict[str, Any]:
    with coop.session() as s:
        job = s.get_one(Job, ids["job"])
        pending = s.get_one(OutboxMessage, ids["outbox"])
        return {
            "pickup": job.pickup, "dropoff": job.dropoff, "job": job.note,
            "announcement": s.get_one(Announcement, ids["announcement"]).text,
            "poll": s.get_one(Poll, ids["poll"]).title,
            "contribution": s.get_one(Contribution, ids["contribution"]).note,
            "ledger": s.get_one(LedgerEntry, ids["ledger"]).note,
            "outbox": pending.text, "outbox_status": pending.status,
            "audit": s.get_one(AuditEntry, ids["audit"]).details,
            "event": s.get_one(JobEvent, ids["event"]).details,
        }  # fmt: skip


async def leaves(coop: Coop, handle: str) -> None:
    """`/leave confirm`, then the export goes out and the erasure sweep runs."""
    assert "You have left" in await coop.say(handle, "/leave confirm")
    await coop.tick(seconds=5)
    with coop.session() as s:
        assert s.get_one(Member, 2).name == GONE


async def test_every_spelling_of_her_name_and_each_part_of_it_is_erased(any_coop: Coop) -> None:
    coop = any_coop
    coop.member("Alice", "admin")
    zoe = coop.member("Zoé Martin", handle="zm")
    ids = write(coop, {
        "job": "Ask Zoé for the code, not Zoéline",
        "dropoff": "Chez zoé, 12 rue Martine",
        "pickup": "Cafe\u0301 Martine",
        "announcement": "ZOÉ brings the keys",
        "poll": f"Should {NFD_ZOE} lead the repair workshop?",
        "contribution": "Martin's cargo run",
        "ledger": "tyres for ZOE\u0301 MARTIN",
        "outbox": "Zoé Martin swapped her shift with you",
    }, details={"note": "zoé  martin asked, Martine answered", "by": {"Zoé": ["MARTIN"]}})  # fmt: skip
    await leaves(coop, zoe)
    assert read(coop, ids) == {
        "job": f"Ask {GONE} for the code, not Zoéline",
        "dropoff": f"Chez {GONE}, 12 rue Martine",
        "pickup": "Cafe\u0301 Martine",  # nothing of hers: left exactly as stored
        "announcement": f"{GONE} brings the keys",
        "poll": f"Should {GONE} lead the repair workshop?",
        "contribution": f"{GONE}'s cargo run",
        "ledger": f"tyres for {GONE}",
        "outbox": f"{GONE} swapped her shift with you",
        "outbox_status": "pending",
        "audit": {"note": f"{GONE} asked, Martine answered", "by": {GONE: [GONE]}},
        "event": {"note": f"{GONE} asked, Martine answered", "by": {GONE: [GONE]}},
    }


async def test_a_member_who_stays_keeps_the_name_they_share_with_her(any_coop: Coop) -> None:
    coop = any_coop
    coop.member("Alice", "admin")
    zoe = coop.member("Zoé Martin", handle="zm")
    coop.member("Bob Martin", "coordinator", handle="bob")
    with coop.session() as s:
        bob = s.get_one(Member, 3)
        members_svc.add_identity(s, bob, "matrix", "@bob.martin:example.org", coop.clock.now(), "Bob M.")
    candidates = {"candidates": [{"id": 2, "name": "Zoé Martin"}, {"id": 3, "name": "BOB MARTIN"}]}
    ids = write(coop, {
        "announcement": "Martin and Bob Martin swap Thursday: write to @bob.martin:example.org",
        "job": "Bob M. waits for martin at the door",
    }, details=candidates)  # fmt: skip
    await leaves(coop, zoe)
    texts = read(coop, ids)
    assert texts["announcement"] == f"{GONE} and Bob Martin swap Thursday: write to @bob.martin:example.org"
    assert texts["job"] == f"Bob M. waits for {GONE} at the door"
    assert texts["event"] == {"candidates": [{"id": 2, "name": GONE}, {"id": 3, "name": "BOB MARTIN"}]}
    with coop.session() as s:
        assert s.get_one(Member, 3).name == "Bob Martin"


async def test_particles_and_other_words_are_not_part_of_a_name(any_coop: Coop) -> None:
    coop = any_coop
    coop.member("Alice", "admin")
    marie = coop.member("Marie-Claire de la Fontaine", handle="mcf")
    ids = write(coop, {
        "announcement": "Marie a laissé les clés de la cave à Claire",
        "job": "Rendez-vous chez FONTAINE, à la gare; Marie-Claire paie",
        "ledger": "de la part de MARIE-CLAIRE DE LA FONTAINE",
        "contribution": "Marielle et Fontainebleau, de la part de La Poste",
    })  # fmt: skip
    await leaves(coop, marie)
    texts = read(coop, ids)
    assert texts["announcement"] == f"{GONE} a laissé les clés de la cave à {GONE}"
    assert texts["job"] == f"Rendez-vous chez {GONE}, à la gare; {GONE} paie"
    assert texts["ledger"] == f"de la part de {GONE}"
    assert texts["contribution"] == "Marielle et Fontainebleau, de la part de La Poste"


async def test_words_end_where_the_script_says_they_do(coop: Coop) -> None:
    coop.member("Alice", "admin")
    anil = coop.member("अनिल शर्मा", handle="anil")
    # "अनिला" is Anil + a vowel sign (a combining mark): another name, not Anil's.
    ids = write(coop, {"announcement": "अनिल और शर्मा जी, अनिला नहीं"})
    await leaves(coop, anil)
    assert read(coop, ids)["announcement"] == f"{GONE} और {GONE} जी, अनिला नहीं"


async def test_an_apostrophe_is_one_however_it_was_typed(coop: Coop) -> None:
    coop.member("Alice", "admin")
    aicha = coop.member("Aïcha N’Diaye", handle="an")
    ids = write(coop, {"announcement": "N'Diaye et AÏCHA N’DIAYE sont d’accord, Diaye aussi"})
    await leaves(coop, aicha)
    assert read(coop, ids)["announcement"] == f"{GONE} et {GONE} sont d’accord, Diaye aussi"
