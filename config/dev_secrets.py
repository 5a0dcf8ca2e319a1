"""Development mode's generated secrets: created once in the data directory (mode 0600), then reused."""

from __future__ import annotations

import base64
import logging
import os
import secrets
from dataclasses import replace
from pathlib import Path

from config import Config, with_development_defaults

log = logging.getLogger("statesman.config")


def _create_once(path: Path, content: str) -> bool:
    """Write ``content`` to a new file readable only by us; False when another process created it first."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as handle:
        handle.write(content + "\n")
    return True


def ensure_development_secrets(config: Config) -> Config:
    """In development mode, generate the missing local encryption key and signing secret, and use them."""
    if not config.development:
        return config
    if config.kms_backend == "local" and config.kms_key is None:
        key = base64.b64encode(os.urandom(32)).decode()
        if _create_once(config.dev_kms_key_file, key):
            log.warning(
                "development mode: generated an encryption key in %s (mode 0600); keep it with the data, "
                "states cannot be read without it",
                config.dev_kms_key_file,
            )
    if config.secret_key is None and _create_once(config.dev_secret_key_file, secrets.token_urlsafe(48)):
        log.warning("development mode: generated a signing secret in %s (mode 0600)", config.dev_secret_key_file)
    return with_development_defaults(replace(config))
