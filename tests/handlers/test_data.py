"""Members own their data: /mydata, /leave and /audit, as members live them."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import timedelta

from sqlalchemy import select

from coopbot.models import AuditEntry, Job, Member
from coopbot.services.audit import record
from tests.conftest import Coop

ZOE = "Zoé Leclerc"


def unzip(data: bytes) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name).decode("utf-8") for name in archive.namelist()}


# --- /mydata -------------------------------------------------------------------------


async def test_mydata_asked_in_the_group_arrives_privately_as_a_zip(coop: Coop) -> None:
    coop.member("Alice", "admin")
    zoe = coop.member(ZOE, handle="zoe")
    in_group = await coop.replies(zoe, "/mydata", private=False)
    assert [m.text for m in coop.room()] == ["I have sent you the answer in a private chat."]
    sent = [m for m in in_group if m.private]
    assert len(sent) == 1 and sent[0].attachment is not None
    name, data, mime = sent[0].attachment
    assert (name, mime) == ("coopbot-data-2.zip", "application/zip")
    files = unzip(data)
    assert json.loads(files["data.json"])["profile"][0]["name"] == ZOE
    assert "Alice" not in "".join(files.values())
    assert sent[0].text.startswith("Here is everything Coop Vélo holds about you")


async def test_mydata_takes_no_arguments(coop: Coop) -> None:
    zoe = coop.member(ZOE, handle="zoe")
    assert await coop.say(zoe, "/mydata Bob") == "That is not how /mydata works. Type: /mydata"


# --- /leave -----------------------------------------------------------------------------


async def test_leaving_asks_first_then_sends_the_export_last_and_forgets_her(coop: Coop) -> None:
    alice = coop.member("Alice", "admin")
    zoe = coop.member(ZOE, handle="zoe")
    asked = await coop.replies(zoe, "/leave")
    assert "Leaving Coop Vélo is final" in asked[0].text and "“former member #2”" in asked[0].text
    assert [(b.label, b.command) for b in asked[0].buttons] == [("Yes, leave", "/leave confirm")]
    assert await coop.say(alice, "/members") == "2 active members:\n#1 Alice — admin\n#2 Zoé Leclerc — member"

    await coop.say(zoe, "", button="/leave confirm")
    last = coop.inbox(zoe)[-1]
    assert last.text.startswith("You have left Coop Vélo. Here is everything it held about you")
    assert last.attachment is not None and ZOE in unzip(last.attachment[1])["data.json"]
    assert [m.text for m in coop.room("coordinators")] == [
        "Zoé Leclerc (#2) has left the co-op. Their name and accounts are erased once they have their data."
    ]
    await coop.tick(seconds=5)
    received = len(coop.inbox(zoe))
    await coop.say(alice, "/announce General meeting Thursday 7pm")
    await coop.tick(minutes=5)
    assert len(coop.inbox(zoe)) == received, "a former member got a message after the export"
    assert await coop.say(alice, "/members") == "1 active member:\n#1 Alice — admin"
    assert "To join, ask a coordinator for an invite code" in await coop.say(zoe, "/whoami")
    assert "former member #2: left the co-op" in await coop.say(alice, "/audit")


async def test_leave_confirm_typed_works_and_other_words_do_not(coop: Coop) -> None:
    coop.member("Alice", "admin")
    zoe = coop.member(ZOE, handle="zoe")
    assert await coop.say(zoe, "/leave now") == "That is not how /leave works. Type: /leave, then /leave confirm"
    assert "You have left Coop Vélo" in await coop.say(zoe, "/leave confirm")


async def test_the_last_admin_hands_over_before_leaving(coop: Coop) -> None:
    alice = coop.member("Alice", "admin")
    coop.member("Bob")
    assert await coop.say(alice, "/leave confirm") == (
        "You are the co-op's last admin: make someone else admin first with /role MEMBER admin, "
        "then type /leave again."
    )
    await coop.say(alice, "/role Bob admin")
    assert "You have left Coop Vélo" in await coop.say(alice, "/leave confirm")


async def test_a_courier_holding_a_job_delivers_or_releases_it_first(coop: Coop) -> None:
    coop.member("Alice", "admin")
    zoe = coop.member(ZOE, handle="zoe")
    now = coop.clock.now()
    with coop.session() as session:
        job = Job(pickup="Boulangerie", dropoff="Rue des Lilas", status="picked_up", assignee_id=2,
                  created_at=now, updated_at=now)
        session.add(job)
        session.flush()
        number = job.id
    assert await coop.say(zoe, "/leave") == (
        f"You still hold 1 job, J-{number}: deliver it or type /release J-{number} first, then /leave again."
    )


# --- /audit -------------------------------------------------------------------------------


async def test_everyone_reads_the_same_audit_with_names_and_local_time(coop: Coop) -> None:
    alice = coop.member("Alice", "admin")
    bob = coop.member("Bob")
    zoe = coop.member(ZOE, handle="zoe")
    coop.clock.advance(minutes=30)
    await coop.say(alice, "/role Bob coordinator")
    as_member = await coop.say(zoe, "/audit")
    assert as_member == await coop.say(bob, "/audit") == await coop.say(alice, "/audit")
    lines = as_member.splitlines()
    assert lines[0] == "Latest privileged actions (everyone reads the same log):"
    assert lines[-1] == "2026-11-02 09:30 · Alice: changed the role of Bob: member → coordinator"
    assert lines[1] == "2026-11-02 09:00 · the bot: added Alice as admin"

    about_bob = (await coop.say(zoe, "/audit Bob")).splitlines()
    assert about_bob[0] == "Latest privileged actions by or about Bob:"
    assert len(about_bob) == 3 and not any("Zoé" in line for line in about_bob)

    await coop.say(zoe, "/lang fr")
    assert (await coop.say(zoe, "/audit")).splitlines()[-1] == (
        "2026-11-02 09:30 · Alice\u00a0: a changé le rôle de Bob\u00a0: membre → coordinateur·rice"
    )
    coop.member("Inès", handle="ines")
    await coop.say(alice, "/role Inès coordinator")
    elided = "a changé le rôle d’Inès\u00a0: membre → coordinateur·rice"
    assert (await coop.say(zoe, "/audit")).splitlines()[-1].endswith(elided)


async def test_the_audit_shows_the_latest_twenty_and_unknown_actions_by_code(coop: Coop) -> None:
    coop.member("Alice", "admin")
    zoe = coop.member(ZOE, handle="zoe")
    with coop.session() as session:
        alice = session.get_one(Member, 1)
        for number in range(25):
            record(session, coop.clock.now() + timedelta(minutes=number), "kitchen.cleaned", actor=alice,
                   room=f"R{number}")
    lines = (await coop.say(zoe, "/audit")).splitlines()
    assert len(lines) == 21
    assert lines[-1] == "2026-11-02 09:24 · Alice: kitchen.cleaned (room: R24)"
    assert lines[1] == "2026-11-02 09:05 · Alice: kitchen.cleaned (room: R5)"


async def test_nothing_in_the_audit_reveals_a_secret_ballot(coop: Coop) -> None:
    alice = coop.member("Alice", "admin")
    bob = coop.member("Bob")
    zoe = coop.member(ZOE, handle="zoe")
    await coop.say(alice, "/propose Buy a cargo bike? --secret --closes 1h")
    await coop.say(bob, "/vote P-1 disagree")
    await coop.say(zoe, "/vote P-1 agree")
    await coop.say(alice, "/vote P-1 agree")
    await coop.tick(hours=2)
    with coop.session() as session:
        entries = list(session.scalars(select(AuditEntry)))
        # Even an entry that carried a choice by mistake would not show it.
        record(session, coop.clock.now(), "poll.debug", poll="P-1", choice="disagree", ballot_key="k")
    assert not any("agree" in json.dumps(e.details) for e in entries)
    assert not any(2 in (e.actor_id, e.subject_id) for e in entries if e.action != "member.added")
    audit = await coop.say(zoe, "/audit")
    assert "the bot: closed P-1: passed" in audit
    assert "agree" not in audit and "ballot" not in audit


async def test_audit_of_someone_unknown_says_how_to_name_them(coop: Coop) -> None:
    zoe = coop.member(ZOE, handle="zoe")
    assert await coop.say(zoe, "/audit Nobody") == "No active member matches Nobody. Type /members to see the list."


async def test_a_former_member_is_shown_by_pseudonym_in_each_language(coop: Coop) -> None:
    alice = coop.member("Alice", "admin")
    zoe = coop.member(ZOE, handle="zoe")
    await coop.say(zoe, "/leave confirm")
    await coop.tick(seconds=5)
    assert (await coop.say(alice, "/audit #2")).startswith("Latest privileged actions by or about former member #2:")
    await coop.say(alice, "/lang fr")
    french = await coop.say(alice, "/audit #2")
    assert french.startswith("Dernières actions à privilèges faites par ou concernant l’ancien membre n°2\u00a0:")
    assert "l’ancien membre n°2\u00a0: a quitté la coopérative" in french


# --- removal is a vote ----------------------------------------------------------------------


async def test_no_one_removes_a_member_alone(coop: Coop) -> None:
    alice = coop.member("Alice", "admin")
    coop.member(ZOE, handle="zoe")
    assert await coop.say(alice, f"/remove {ZOE}") == (
        "No one removes a member alone: the members decide by vote. "
        f"Propose it with /propose Remove {ZOE} --sets remove_member=#2"
    )


async def test_a_removal_voted_by_the_members_sends_the_export_then_erases(coop: Coop) -> None:
    alice = coop.member("Alice", "admin")
    bob = coop.member("Bob", "coordinator")
    zoe = coop.member(ZOE, handle="zoe")
    refused = await coop.say(zoe, "/propose Remove Alice --sets remove_member=#1")
    assert "remove_member" in refused and "P-1" not in refused
    created = await coop.say(bob, "/propose Remove Zoé --sets remove_member=#3 --closes 1h")
    assert "P-1" in created
    await coop.say(alice, "/vote P-1 agree")
    await coop.say(bob, "/vote P-1 agree")
    await coop.tick(hours=2)
    export = coop.inbox(zoe)[-1]
    assert export.text.startswith("By a vote of the members, you are no longer a member of Coop Vélo.")
    assert export.attachment is not None
    await coop.tick(seconds=5)
    audit = await coop.say(alice, "/audit")
    assert "the bot: removed former member #3 from the co-op (vote P-1)" in audit
    assert "the bot: erased the name and accounts of former member #3" in audit
    assert ZOE not in audit
