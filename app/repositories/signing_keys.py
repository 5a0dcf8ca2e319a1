"""The keys that sign the access tokens of ``/v1/auth``, persisted so every worker and host signs with the same one.

One key signs at a time (``slot`` 1); ``rotate_signing_key`` retires it and makes a new one, and a retired key stays
published in ``/oidc/jwks.json`` until ``prune_signing_keys`` removes it, so every token it signed still verifies
until it expires. Keys are EC P-256 (ES256); ``kid`` is the key's RFC 7638 thumbprint. The private key is stored
encrypted by the KMS driver, bound to its ``kid``, and never leaves the process in any other form.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from datetime import datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from sqlalchemy.exc import IntegrityError

from app.core.clock import utcnow
from app.core.errors import Conflict
from app.drivers.kms.base import seal, unseal
from app.extensions import db, drivers
from app.models import SigningKey
from app.repositories.audit import record_event

ALGORITHM = "ES256"
CURRENT_SLOT = 1
ACCESS_TOKEN_TYPE = "at+jwt"  # RFC 9068: the header of a JWT access token
_private_keys: dict[str, ec.EllipticCurvePrivateKey] = {}  # by kid; a kid names one immutable key
_guard = threading.Lock()


def current_signing_key() -> SigningKey:
    """The key that signs now, created on first use (workers racing to create it end up with the same one)."""
    key = _current()
    if key is not None:
        return key
    try:
        return _create(slot=CURRENT_SLOT)
    except IntegrityError:
        db.session.rollback()  # another worker created it first: use theirs
    key = _current()
    if key is None:
        raise Conflict("the signing key changed while it was being created; try again")
    return key


def rotate_signing_key(actor: str) -> SigningKey:
    """Retire the current key (it stays published) and make a new one the signing key, in one transaction."""
    previous = _current()
    if previous is not None:
        previous.slot = None
        previous.retired_at = utcnow()
        db.session.flush()
    key = _new_row(slot=CURRENT_SLOT)
    record_event(
        "signing_key.rotate", "ok", actor, commit=False, kid=key.kid, previous=previous.kid if previous else None
    )
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict("another rotation ran at the same time; list the keys and try again") from None
    return key


def published_keys() -> list[SigningKey]:
    """Every key whose tokens may still be presented: the current one and the retired ones, newest first."""
    return list(db.session.scalars(db.select(SigningKey).order_by(SigningKey.created_at.desc())))


def prune_signing_keys(retired_before: datetime, actor: str) -> list[str]:
    """Delete the keys retired before ``retired_before`` (their tokens have expired); returns their kids."""
    doomed = list(
        db.session.scalars(
            db.select(SigningKey).where(SigningKey.slot.is_(None), SigningKey.retired_at < retired_before)
        )
    )
    for key in doomed:
        record_event("signing_key.prune", "ok", actor, commit=False, kid=key.kid)
        db.session.delete(key)
    db.session.commit()
    return [key.kid for key in doomed]


def reseal_signing_keys() -> int:
    """Seal every signing key under the KMS driver's current key (``flask kms rotate``); returns how many moved."""
    moved = 0
    stale = db.select(SigningKey).where(SigningKey.kms_key_id != drivers().kms.key_id)
    for key in db.session.scalars(stale):
        key.private_key, key.kms_key_id = seal_private_key(key.kid, unseal_private_key(key))
        moved += 1
    db.session.commit()
    return moved


def sealed_key_ids() -> set[str]:
    """Every KMS key id a signing key's private half is sealed under."""
    return set(db.session.scalars(db.select(SigningKey.kms_key_id).distinct()))


def sign_access_token(claims: dict[str, Any]) -> str:
    """``claims`` as a JWT access token signed by the current key (header ``kid`` names it)."""
    key = current_signing_key()
    headers = {"kid": key.kid, "typ": ACCESS_TOKEN_TYPE}
    return jwt.encode(claims, _private_key(key), algorithm=key.algorithm, headers=headers)


def is_access_token_header(token: str) -> bool:
    """True when the (unverified) JWT header says it is one of our access tokens; its hash is what is checked."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        return False
    return header.get("typ") == ACCESS_TOKEN_TYPE and isinstance(header.get("kid"), str)


def jwks() -> dict[str, list[dict[str, Any]]]:
    """The public keys as a JWK set (RFC 7517), current key first."""
    current_signing_key()
    return {"keys": [dict(key.public_jwk) for key in published_keys()]}


def _current() -> SigningKey | None:
    return db.session.scalar(db.select(SigningKey).where(SigningKey.slot == CURRENT_SLOT))


def _create(slot: int) -> SigningKey:
    key = _new_row(slot)
    record_event("signing_key.create", "ok", "statesman", commit=False, kid=key.kid)
    db.session.commit()
    return key


def _new_row(slot: int) -> SigningKey:
    private = ec.generate_private_key(ec.SECP256R1())
    public_jwk: dict[str, Any] = ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    kid = _thumbprint(public_jwk)
    public_jwk.update(kid=kid, alg=ALGORITHM, use="sig")
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    sealed, kms_key_id = seal_private_key(kid, pem)
    key = SigningKey(
        kid=kid,
        algorithm=ALGORITHM,
        public_jwk=public_jwk,
        private_key=sealed,
        kms_key_id=kms_key_id,
        slot=slot,
        created_at=utcnow(),
    )
    db.session.add(key)
    db.session.flush()
    with _guard:
        _private_keys[kid] = private
    return key


def _private_key(key: SigningKey) -> ec.EllipticCurvePrivateKey:
    with _guard:
        found = _private_keys.get(key.kid)
    if found is not None:
        return found
    pem = unseal_private_key(key)
    loaded = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise ValueError(f"signing key {key.kid} is not an EC key")
    with _guard:
        _private_keys[key.kid] = loaded
    return loaded


def _context(kid: str) -> bytes:
    # Binds the ciphertext to its kid: a sealed key copied onto another row does not decrypt there.
    return f"signing-key:{kid}".encode()


def _thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638: SHA-256 over the required members in lexicographic order, without whitespace."""
    members = {name: jwk[name] for name in ("crv", "kty", "x", "y")}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


def unseal_private_key(key: SigningKey) -> bytes:
    """The key's private PEM, decrypted by the KMS driver (``flask export`` writes it into the export)."""
    return unseal(drivers().kms, key.private_key, _context(key.kid))


def seal_private_key(kid: str, pem: bytes) -> tuple[bytes, str]:
    """``pem`` sealed under the KMS driver's current key for the key ``kid``: the column values and the key id."""
    kms = drivers().kms
    return seal(kms, pem, _context(kid)), kms.key_id
