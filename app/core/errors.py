"""Domain exceptions shared by repositories, drivers and the three APIs.

Each API renders these in its own protocol shape in one place (see each blueprint's ``errors.py``).
"""

from __future__ import annotations

from typing import Any

from app.core.locks import HeldLock


class StatesmanError(Exception):
    """Base class; ``status`` is the HTTP status every API maps this error to by default."""

    status = 500

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidInput(StatesmanError):
    """The request is malformed (bad JSON, bad name, bad checksum)."""

    status = 400


class Unauthenticated(StatesmanError):
    """No credentials, or credentials that do not verify."""

    status = 401


class Forbidden(StatesmanError):
    """Valid credentials that may not do this."""

    status = 403


class NotFound(StatesmanError):
    """The organization, workspace, version or object does not exist (or is not visible to the caller)."""

    status = 404


class Conflict(StatesmanError):
    """The write contradicts current state (serial, lineage, existing name)."""

    status = 409


class LockConflict(StatesmanError):
    """The workspace is locked by someone else; ``holder`` is the stored lock."""

    status = 423

    def __init__(self, message: str, holder: HeldLock) -> None:
        super().__init__(message)
        self.holder = holder


class UploadPending(StatesmanError):
    """A lock cannot be released normally yet: the newest state version still waits for its uploaded bytes.

    400, not 409: go-tfe reads any 409 from ``actions/unlock`` as "not locked" and would hide the reason.
    """

    status = 400


class PayloadTooLarge(StatesmanError):
    """The body exceeds ``MAX_STATE_SIZE``."""

    status = 413


class BackendUnavailable(StatesmanError):
    """A storage, lock, KMS or database backend cannot be reached; ``backend`` names it."""

    status = 503

    def __init__(self, backend: str, message: str) -> None:
        super().__init__(f"{backend} backend unavailable: {message}")
        self.backend = backend


class KeyNotConfigured(BackendUnavailable):
    """A stored version names a key this server does not have (yet): 503, as a rotation in progress is.

    Rotating before every server knows the new key makes those servers meet versions under it; that is an outage
    of this server's configuration, not a corrupt state, so clients are told to retry and the operator which key.
    """

    def __init__(self, key_id: str, remedy: str) -> None:
        super().__init__("kms", f"state was encrypted with key {key_id}, which this server does not have: {remedy}")
        self.key_id = key_id


class DecryptionFailed(StatesmanError):
    """A stored ciphertext does not verify with any known key (wrong key, or it was moved or altered)."""

    status = 500
