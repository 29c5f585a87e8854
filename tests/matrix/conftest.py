"""Fixtures for the Matrix tests: one real Synapse per session, real nio clients as members.

Synapse takes a few seconds to start, so it starts once and every test
registers its own fresh accounts (unique names) instead of resetting it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from tests.matrix.members import MatrixCoop, NioMember
from tests.matrix.synapse_server import SynapseServer, synapse_available, unique

MakeMember = Callable[[str], Awaitable[NioMember]]


@pytest.fixture(scope="session")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SynapseServer]:
    reason = synapse_available()
    if reason is not None:
        pytest.skip(reason)
    server = SynapseServer(tmp_path_factory.mktemp("synapse"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def make_member(synapse: SynapseServer, tmp_path: Path) -> AsyncIterator[MakeMember]:
    """`await make_member("Alice")`: register a fresh account and start its client."""
    members: list[NioMember] = []

    async def make(name: str) -> NioMember:
        account = await asyncio.to_thread(synapse.register, unique(name.lower()))
        member = NioMember(synapse, account, tmp_path / f"nio-{account.user_id[1:].split(':')[0]}", name)
        await member.start()
        members.append(member)
        return member

    yield make
    for member in members:
        await member.stop()


@pytest.fixture
async def matrix_coop(synapse: SynapseServer, tmp_path: Path) -> AsyncIterator[MatrixCoop]:
    """A co-op bot with its own Matrix account; the test calls `await matrix_coop.start()`."""
    coop = await asyncio.to_thread(MatrixCoop, synapse, tmp_path / "coop")
    yield coop
    await coop.stop()
    coop.close()
