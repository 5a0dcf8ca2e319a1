"""config/gunicorn.conf.py: the worker hooks do what their docstrings say."""

from __future__ import annotations

import gc
import runpy
from pathlib import Path

import pytest

SETTINGS = Path(__file__).resolve().parents[2] / "config" / "gunicorn.conf.py"


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, object]:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))  # the settings would make a directory otherwise
    monkeypatch.setenv("KMS_BACKEND", "none")
    monkeypatch.setenv("OPENTACO_SECRET_KEY", "settings-test")
    return runpy.run_path(str(SETTINGS))


def test_a_started_worker_exempts_its_start_up_objects_from_collection(settings: dict[str, object]) -> None:
    survivor = {"built": "at start-up"}
    gc.unfreeze()
    try:
        settings["post_worker_init"](object())  # type: ignore[operator]
        assert gc.get_freeze_count() > 0
        assert not any(found is survivor for found in gc.get_objects())  # frozen: in no generation the GC scans
    finally:
        gc.unfreeze()
