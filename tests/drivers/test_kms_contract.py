"""Every encryption driver passes the same scenarios."""

from __future__ import annotations

import pytest

from app.core.errors import DecryptionFailed
from app.drivers.kms.base import KeyManager

MIB = 1024 * 1024
CONTEXT = b"statesman:ws-1:sv-1"


def roundtrip(kms: KeyManager, data: bytes, context: bytes = CONTEXT) -> bytes:
    sealed = b"".join(kms.encrypt([data], context))
    return b"".join(kms.decrypt([sealed], context))


@pytest.mark.parametrize("size", [0, 1, 1000, MIB, MIB + 1, 3 * MIB])
def test_roundtrip(kms: KeyManager, size: int) -> None:
    data = bytes(i % 251 for i in range(size))
    assert roundtrip(kms, data) == data


def test_chunking_does_not_matter(kms: KeyManager) -> None:
    data = b"x" * (2 * MIB + 17)
    sealed = b"".join(kms.encrypt((data[i : i + 999] for i in range(0, len(data), 999)), CONTEXT))
    pieces = [sealed[i : i + 4096] for i in range(0, len(sealed), 4096)]
    assert b"".join(kms.decrypt(pieces, CONTEXT)) == data


def test_ciphertext_differs_from_plaintext_and_between_writes(encrypting_kms: KeyManager) -> None:
    data = b'{"secret":"hunter2"}'
    first = b"".join(encrypting_kms.encrypt([data], CONTEXT))
    second = b"".join(encrypting_kms.encrypt([data], CONTEXT))
    assert b"hunter2" not in first
    assert first != second


def test_ciphertext_is_bound_to_its_context(encrypting_kms: KeyManager) -> None:
    sealed = b"".join(encrypting_kms.encrypt([b"state"], CONTEXT))
    with pytest.raises(DecryptionFailed):
        b"".join(encrypting_kms.decrypt([sealed], b"statesman:ws-2:sv-1"))


def test_tampering_is_detected(encrypting_kms: KeyManager) -> None:
    sealed = bytearray(b"".join(encrypting_kms.encrypt([b"a" * 5000], CONTEXT)))
    sealed[-30] ^= 1
    with pytest.raises(DecryptionFailed):
        b"".join(encrypting_kms.decrypt([bytes(sealed)], CONTEXT))


def test_truncation_is_detected(encrypting_kms: KeyManager) -> None:
    data = b"b" * (2 * MIB + 10)
    sealed = b"".join(encrypting_kms.encrypt([data], CONTEXT))
    for cut in (len(sealed) - 10 - 16, len(sealed) - (10 + 16) - (MIB + 16), 20):
        with pytest.raises(DecryptionFailed):
            b"".join(encrypting_kms.decrypt([sealed[:cut]], CONTEXT))


def test_key_id_is_not_the_key(kms: KeyManager) -> None:
    assert kms.key_id
    assert len(kms.key_id) < 100
