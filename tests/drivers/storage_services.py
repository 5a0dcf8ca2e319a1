"""Storage drivers that need a real service, added to the storage contract fixture by ``conftest.py``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

FACTORIES: dict[str, Callable[[Path, pytest.FixtureRequest], object]] = {}
