"""The test homeserver itself: two plain matrix-nio clients can talk through it.

If these fail, every bot test after them would fail for reasons that have
nothing to do with coopbot; they pin down that Synapse, registration,
invites, end-to-end encryption and reactions work on this machine.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from tests.matrix.members import NioMember
from tests.matrix.synapse_server import SynapseError, SynapseServer

MakeMember = Callable[[str], Awaitable[NioMember]]


def test_the_server_refuses_a_registration_with_a_wrong_mac(synapse: SynapseServer) -> None:
    nonce = synapse.request("GET", "/_synapse/admin/v1/register")["nonce"]
    with pytest.raises(SynapseError, match="403"):
        synapse.request(
            "POST",
            "/_synapse/admin/v1/register",
            {"nonce": nonce, "username": "mallory", "password": "x", "admin": False, "mac": "00" * 20},
        )


async def test_two_members_talk_in_a_plain_room(make_member: MakeMember) -> None:
    alice = await make_member("Alice")
    bob = await make_member("Bob")
    room = await alice.create_room([bob.user_id], direct=False, encrypted=False, name="Coop")
    await alice.wait_joined(room, bob.user_id)

    mark = bob.mark()
    await alice.say(room, "hello from alice")
    seen = await bob.next_message(after=mark, sender=alice.user_id, room_id=room)

    assert seen.body == "hello from alice"
    assert not seen.encrypted


async def test_two_members_talk_in_an_encrypted_direct_chat(make_member: MakeMember) -> None:
    alice = await make_member("Alice")
    bob = await make_member("Bob")
    room = await alice.create_room([bob.user_id], direct=True, encrypted=True)
    await alice.wait_joined(room, bob.user_id)

    mark = bob.mark()
    await alice.say(room, "a secret")
    seen = await bob.next_message(after=mark, sender=alice.user_id, room_id=room)
    assert seen.body == "a secret"
    assert seen.encrypted

    mark = alice.mark()
    await bob.say(room, "a secret back")
    answer = await alice.next_message(after=mark, sender=bob.user_id, room_id=room)
    assert answer.body == "a secret back"
    assert answer.encrypted
    assert bob.undecryptable == [] and alice.undecryptable == []


async def test_a_reaction_reaches_the_other_member(make_member: MakeMember) -> None:
    from nio import ReactionEvent

    alice = await make_member("Alice")
    bob = await make_member("Bob")
    room = await alice.create_room([bob.user_id], direct=True, encrypted=True)
    await alice.wait_joined(room, bob.user_id)
    reactions: list[tuple[str, str]] = []

    async def on_reaction(_room: object, event: ReactionEvent) -> None:
        reactions.append((event.reacts_to, event.key))

    alice.client.add_event_callback(on_reaction, ReactionEvent)
    offer = await alice.say(room, "J-1: take it?")
    await bob.next_message(after=0, sender=alice.user_id, contains="J-1")
    await bob.react(room, offer, "✅")

    await alice.wait_for(lambda: bool(reactions), "bob's reaction")
    assert reactions == [(offer, "✅")]
