"""Static users (``AUTH_BASIC_USERS``): ``user:<bcrypt or argon2 hash>``, for small installs."""

from __future__ import annotations

import functools
import hashlib
import hmac

import bcrypt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from app.core.ttl_cache import TtlCache

# A bcrypt check costs ~100 ms by design; Terraform sends the same credentials on every request, so a
# successful check is remembered briefly, keyed by a digest (the password itself is never kept).
_VERIFIED_TTL_SECONDS = 60.0
_verified: TtlCache[bool] = TtlCache(_VERIFIED_TTL_SECONDS)
_argon2 = PasswordHasher()


def _cache_key(user: str, password: str, stored_hash: str) -> str:
    return hashlib.sha256(f"{user}\0{password}\0{stored_hash}".encode()).hexdigest()


def check_password(user: str, password: str, stored_hash: str) -> bool:
    """True when ``password`` matches the stored bcrypt or argon2 hash."""
    key = _cache_key(user, password, stored_hash)
    if _verified.get(key):
        return True
    if not _verify(password, stored_hash):
        return False
    _verified.put(key, True)
    return True


def _verify(password: str, stored_hash: str) -> bool:
    if stored_hash.startswith("$argon2"):
        try:
            return _argon2.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return False
    try:
        return bcrypt.checkpw(password.encode(), stored_hash.encode())
    except ValueError:
        return False


@functools.cache
def _dummy_hash() -> str:
    return bcrypt.hashpw(b"statesman-no-such-user", bcrypt.gensalt()).decode()


def burn_password_check(password: str) -> None:
    """Spend one password check on nothing, so unknown names answer as slowly as wrong passwords."""
    _verify(password, _dummy_hash())


def find_static_user(users: tuple[tuple[str, str], ...], name: str) -> str | None:
    """The stored hash of static user ``name``, or None (constant-time name comparison)."""
    found = None
    for user, stored_hash in users:
        if hmac.compare_digest(user.encode(), name.encode()):
            found = stored_hash
    return found
