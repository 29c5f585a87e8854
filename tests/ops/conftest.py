"""A PostgreSQL schema of its own for each test of several processes (skipped without PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import postgres_schema


@pytest.fixture
def pg_url() -> Iterator[str]:
    with postgres_schema() as url:
        yield url
