"""How the Matrix transport turns buttons and replies into text, without a server.

Every button must stay reachable: as a reaction while there are emojis to
give, and always as the command to type, written the way Element lets it
through (`!`, since Element keeps `/` for itself).
"""

from __future__ import annotations

from coopbot.chat import Button, Outgoing
from coopbot.transports.matrix.events import strip_reply_fallback
from coopbot.transports.matrix.send import KEYCAPS, same_emoji, tx_id, typed_in_text
from coopbot.transports.matrix.transport import MatrixTransport


def test_a_ballot_without_emojis_gets_numbered_keycaps() -> None:
    ballot = Outgoing("P-3: new bikes?", buttons=tuple(Button(o, f"/vote P-3 {o}") for o in ("yes", "no", "abstain")))
    assert MatrixTransport.button_emojis(ballot) == [
        ("1️⃣", "yes", "/vote P-3 yes"),
        ("2️⃣", "no", "/vote P-3 no"),
        ("3️⃣", "abstain", "/vote P-3 abstain"),
    ]


def test_two_buttons_never_share_a_reaction() -> None:
    offer = Outgoing("J-1", buttons=(Button("Accept", "/accept J-1", "✅"), Button("Also", "/jobs", "✅\ufe0f")))
    emojis = [emoji for emoji, _, _ in MatrixTransport.button_emojis(offer)]
    assert emojis == ["✅", "1️⃣"]


def test_past_ten_buttons_the_rest_are_typed_not_reacted() -> None:
    many = Outgoing("pick", buttons=tuple(Button(str(n), f"/vote P-1 {n}") for n in range(12)))
    chosen = MatrixTransport.button_emojis(many)
    assert [e for e, _, _ in chosen[:10]] == list(KEYCAPS)
    assert [(e, c) for e, _, c in chosen[10:]] == [("", "/vote P-1 10"), ("", "/vote P-1 11")]


def test_the_same_outbox_key_always_gives_the_same_transaction_id() -> None:
    assert tx_id("announce:4:m7:part1:matrix") == tx_id("announce:4:m7:part1:matrix")
    assert tx_id("announce:4:m7:part1:matrix") != tx_id("announce:4:m7:part2:matrix")


def test_element_and_other_clients_spell_the_check_mark_the_same() -> None:
    assert same_emoji("✅\ufe0f") == same_emoji("✅")


def test_a_reply_in_element_is_read_without_the_quoted_message() -> None:
    body = "> <@carla:coop.example> J-4 is open\n> from the bakery\n\n!accept J-4"
    assert strip_reply_fallback(body) == "!accept J-4"
    assert strip_reply_fallback("!help") == "!help"


def test_commands_named_in_a_sentence_are_shown_as_element_lets_them_be_typed() -> None:
    """"Type /myslots" would open Element's unknown-command prompt: on Matrix the hint reads
    "!myslots", wherever a sentence names a command, and nothing else that holds a slash changes."""
    assert typed_in_text("You ride S-1. Type /myslots to see your slots.") == (
        "You ride S-1. Type !myslots to see your slots."
    )
    assert typed_in_text("/why S-31 explains it (or /pourquoi S-31)") == "!why S-31 explains it (or !pourquoi S-31)"
    assert typed_in_text("Tapez\u202f: «\u202f/créneaux\u202f»") == "Tapez\u202f: «\u202f!créneaux\u202f»"
    unchanged = "1/2 taken · km/h · https://bot.example.coop/calendar/x.ics · a / b · 24/7"
    assert typed_in_text(unchanged) == unchanged
