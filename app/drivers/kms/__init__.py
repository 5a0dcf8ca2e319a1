"""Encryption-at-rest drivers and their registry (``KMS_BACKEND``).

Each registry entry imports its driver's module when it is chosen, so hvac (and requests under it) is loaded only
by servers whose keys live in Vault.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from app.drivers import build_from_registry, lazy
from config import Config

if TYPE_CHECKING:
    from app.drivers.kms.base import KeyManager

log = logging.getLogger("statesman.kms")


KMS_DRIVERS = {
    "local": lazy("app.drivers.kms.local:LocalKeyManager.from_config"),
    "vault": lazy("app.drivers.kms.vault:VaultKeyManager.from_config"),
    "transit": lazy("app.drivers.kms.transit:TransitKeyManager.from_config"),
    "none": lazy("app.drivers.kms.plaintext:PlaintextKeyManager.from_config"),
}


def build_key_manager(config: Config) -> KeyManager:
    """The configured key manager; unknown names fail fast."""
    manager: KeyManager = build_from_registry("encryption", "KMS_BACKEND", config.kms_backend, KMS_DRIVERS, config)
    if manager.name == "none":
        log.warning("KMS_BACKEND=none: states are stored unencrypted")
    return manager
