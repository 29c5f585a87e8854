"""Native Matrix polls (MSC3381): what the bot sends for a poll, and what a member's answer means.

Element and most clients still speak the unstable event types
(`org.matrix.msc3381.poll.*`), while the specification now has stable ones
(`m.poll.*`, Matrix 1.7+). The bot sends the unstable types, which every
poll-capable client shows, with the stable content beside the unstable one in
the same event so a client reading either finds its part; a plain-text
fallback carries the whole question for clients without polls. It reads
answers of both kinds. An answer (a response event pointing at the poll's
start) becomes the member pressing `/vote CODE 1,3`; which start event is
which poll is kept in the co-op's database (`MatrixState.save_poll`), so an
answer after a restart still counts.
"""

from __future__ import annotations

from typing import Any

from coopbot.chat import NativePoll

START = "org.matrix.msc3381.poll.start"
END = "org.matrix.msc3381.poll.end"
RESPONSES = ("org.matrix.msc3381.poll.response", "m.poll.response")
UNSTABLE_TEXT = "org.matrix.msc1767.text"
#: How an answer travels as a reaction's key: "poll:1,3" (a reaction's key is never that).
ANSWER = "poll:"


def start_content(poll: NativePoll, fallback: str) -> dict[str, Any]:
    """The start event: unstable content for today's clients, stable content for tomorrow's."""
    answers = [(str(number), text) for number, text in enumerate(poll.answers, start=1)]
    return {
        START: {
            "question": {UNSTABLE_TEXT: poll.question, "body": poll.question},
            "kind": "org.matrix.msc3381.poll.disclosed",
            "max_selections": poll.max_selections,
            "answers": [{"id": key, UNSTABLE_TEXT: text} for key, text in answers],
        },
        "m.poll": {
            "question": {"m.text": [{"body": poll.question}]},
            "kind": "m.disclosed",
            "max_selections": poll.max_selections,
            "answers": [{"m.id": key, "m.text": [{"body": text}]} for key, text in answers],
        },
        UNSTABLE_TEXT: fallback,
        "m.text": [{"body": fallback}],
        "body": fallback,
        "msgtype": "m.text",
    }


def end_content(start_event_id: str, text: str) -> dict[str, Any]:
    return {
        "m.relates_to": {"rel_type": "m.reference", "event_id": start_event_id},
        END: {},
        UNSTABLE_TEXT: text,
        "m.text": [{"body": text}],
        "body": text,
    }


def answer_of(event_type: str, content: dict[str, Any]) -> tuple[str, list[str]] | None:
    """(the poll's start event id, the answer ids chosen) of a response event; None for anything else."""
    if event_type not in RESPONSES:
        return None
    relation = content.get("m.relates_to") or {}
    start = relation.get("event_id")
    if relation.get("rel_type") != "m.reference" or not isinstance(start, str):
        return None
    unstable = content.get(RESPONSES[0])
    chosen = unstable.get("answers") if isinstance(unstable, dict) else content.get("m.selections")
    if not isinstance(chosen, list):
        return None
    return start, [str(answer) for answer in chosen if str(answer).isdigit()]


def vote_command(code: str, answers: list[str]) -> str | None:
    """The command an answer stands for; None for an empty answer (a client retracting it)."""
    return f"/vote {code} {','.join(answers)}" if answers else None
