"""What every transport hands the core: text is read in one Unicode form (NFC) before anything else."""

from __future__ import annotations

import unicodedata

from sqlalchemy import select

from coopbot.chat import Incoming
from coopbot.models import Job
from tests.conftest import Coop

COMPOSED = "Café Zoé"
DECOMPOSED = unicodedata.normalize("NFD", COMPOSED)


def test_incoming_text_is_normalised_to_nfc() -> None:
    said = Incoming("console", "zoe", "zoe", True, text=DECOMPOSED, display_name=DECOMPOSED, button=DECOMPOSED)
    assert DECOMPOSED != COMPOSED
    assert (said.text, said.display_name, said.button) == (COMPOSED, COMPOSED, COMPOSED)


async def test_a_job_typed_with_combining_accents_is_stored_composed(coop: Coop) -> None:
    alice = coop.member("Alice", "coordinator")
    await coop.say(alice, f"/newjob {DECOMPOSED} -> 3 rue Paul Bert note ask for {DECOMPOSED}")
    with coop.session() as session:
        job = session.scalars(select(Job)).one()
    assert (job.pickup, job.note) == (COMPOSED, f"ask for {COMPOSED}")
