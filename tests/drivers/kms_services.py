"""Kms drivers that need a real service, added to the kms contract fixture by ``conftest.py``.

The Vault drivers run against ``tests/fake_vault.py`` (no Vault can be installed): one server for the whole
session, started on first use and stopped when pytest finishes; each test gets its own secret or Transit key.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from app.drivers.kms.transit import TransitKeyManager
from app.drivers.kms.vault import VaultKeyManager
from app.drivers.kms.vault_client import VaultClient
from tests.fake_vault import ROOT_TOKEN, FakeVault

_FAKE_VAULT = pytest.StashKey[FakeVault]()


def shared_fake_vault(request: pytest.FixtureRequest) -> FakeVault:
    """The session's fake Vault, started on first use and closed when the session ends."""
    stash = request.config.stash
    if _FAKE_VAULT not in stash:
        stash[_FAKE_VAULT] = FakeVault()
        request.config.add_cleanup(stash[_FAKE_VAULT].close)
    return stash[_FAKE_VAULT]


def _vault_kms(tmp_path: Path, request: pytest.FixtureRequest) -> VaultKeyManager:
    fake = shared_fake_vault(request)
    path = f"contract-{uuid.uuid4().hex[:12]}"
    fake.write_secret("secret", path, {"key": base64.b64encode(os.urandom(32)).decode()})
    return VaultKeyManager(VaultClient(fake.url, token=ROOT_TOKEN), f"secret/data/{path}")


def _transit_kms(tmp_path: Path, request: pytest.FixtureRequest) -> TransitKeyManager:
    fake = shared_fake_vault(request)
    key = f"contract-{uuid.uuid4().hex[:12]}"
    fake.create_transit_key("transit", key)
    return TransitKeyManager(VaultClient(fake.url, token=ROOT_TOKEN), "transit", key)


FACTORIES: dict[str, Callable[[Path, pytest.FixtureRequest], object]] = {
    "vault": _vault_kms,
    "transit": _transit_kms,
}
