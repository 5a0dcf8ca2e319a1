"""Encryption-at-rest drivers and their registry (``KMS_BACKEND``)."""

from __future__ import annotations

import logging

from app.drivers import build_from_registry
from app.drivers.kms.base import KeyManager
from app.drivers.kms.local import LocalKeyManager
from app.drivers.kms.plaintext import PlaintextKeyManager
from app.drivers.kms.transit import TransitKeyManager
from app.drivers.kms.vault import VaultKeyManager
from config import Config

log = logging.getLogger("statesman.kms")

KMS_DRIVERS = {
    "local": LocalKeyManager.from_config,
    "vault": VaultKeyManager.from_config,
    "transit": TransitKeyManager.from_config,
    "none": PlaintextKeyManager.from_config,
}


def build_key_manager(config: Config) -> KeyManager:
    """The configured key manager; unknown names fail fast."""
    manager: KeyManager = build_from_registry("encryption", "KMS_BACKEND", config.kms_backend, KMS_DRIVERS, config)
    if manager.name == "none":
        log.warning("KMS_BACKEND=none: states are stored unencrypted")
    return manager
