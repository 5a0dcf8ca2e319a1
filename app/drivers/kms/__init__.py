"""Encryption-at-rest drivers and their registry (``KMS_BACKEND``).

Each registry entry imports its driver's module when it is chosen, so hvac (and requests under it) is loaded only
by servers whose keys live in Vault.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from app.drivers import build_from_registry
from config import Config

if TYPE_CHECKING:
    from app.drivers.kms.base import KeyManager

log = logging.getLogger("statesman.kms")


def _local(config: Config) -> KeyManager:
    from app.drivers.kms.local import LocalKeyManager

    return LocalKeyManager.from_config(config)


def _vault(config: Config) -> KeyManager:
    from app.drivers.kms.vault import VaultKeyManager

    return VaultKeyManager.from_config(config)


def _transit(config: Config) -> KeyManager:
    from app.drivers.kms.transit import TransitKeyManager

    return TransitKeyManager.from_config(config)


def _none(config: Config) -> KeyManager:
    from app.drivers.kms.plaintext import PlaintextKeyManager

    return PlaintextKeyManager.from_config(config)


KMS_DRIVERS = {"local": _local, "vault": _vault, "transit": _transit, "none": _none}


def build_key_manager(config: Config) -> KeyManager:
    """The configured key manager; unknown names fail fast."""
    manager: KeyManager = build_from_registry("encryption", "KMS_BACKEND", config.kms_backend, KMS_DRIVERS, config)
    if manager.name == "none":
        log.warning("KMS_BACKEND=none: states are stored unencrypted")
    return manager
