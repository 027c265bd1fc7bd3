"""CLI fixtures: a seeded embedded home shared per module, and a fresh one per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli._helpers import Invoke, Seeded, make_invoke, seed


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    """Shared by the read-only tests of a module: seeding through the SDK takes a few seconds."""
    return seed(tmp_path_factory.mktemp("cli") / "home")


@pytest.fixture(scope="module")
def cli(seeded: Seeded) -> Invoke:
    """Run ``passerelle ...`` embedded on the seeded home."""
    return make_invoke(seeded.home)


@pytest.fixture
def empty_cli(tmp_path: Path) -> Iterator[Invoke]:
    """Run ``passerelle ...`` embedded on a fresh, empty home (for tests that write)."""
    yield make_invoke(tmp_path / "home")
