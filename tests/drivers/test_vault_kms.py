"""The Vault key managers against the fake Vault: start-up errors, KV key versions, Transit envelopes, tokens."""

from __future__ import annotations

import base64
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import hvac  # type: ignore[import-untyped]
import pytest

from app.core.errors import BackendUnavailable, DecryptionFailed, KeyNotConfigured
from app.drivers.kms import build_key_manager
from app.drivers.kms.transit import TransitKeyManager
from app.drivers.kms.vault import VaultKeyManager, parse_kv_path
from app.drivers.kms.vault_client import VaultClient
from config import Config, ConfigError
from tests.fake_vault import ROOT_TOKEN, FakeVault

MIB = 1024 * 1024
CONTEXT = b"statesman:ws-1:sv-1"
RENEWAL_THREAD = "statesman-vault-token"
SECRET_TOKEN = "hvs.DoNotLeakThisToken42"


@pytest.fixture
def fake() -> Iterator[FakeVault]:
    with FakeVault(kube_mounts=("kubernetes", "k8s-prod")) as server:
        yield server


@pytest.fixture
def closing() -> Iterator[Callable[[Any], Any]]:
    """Register drivers and clients to close at teardown (they own sessions and renewal threads)."""
    opened: list[Any] = []

    def track(thing: Any) -> Any:
        opened.append(thing)
        return thing

    yield track
    for thing in reversed(opened):
        thing.close()


@pytest.fixture
def admin(fake: FakeVault) -> Iterator[Any]:
    """An hvac client with the root token, playing the operator who writes and rotates keys."""
    client = hvac.Client(url=fake.url, token=ROOT_TOKEN, timeout=5)
    yield client
    client.adapter.close()


def vault_config(fake_url: str, **changes: Any) -> Config:
    settings: dict[str, Any] = {
        "kms_backend": "vault",
        "vault_addr": fake_url,
        "vault_token": ROOT_TOKEN,
        "kms_vault_key_path": "secret/data/statesman",
        "kms_transit_key": "statesman",
    }
    return replace(Config(), **{**settings, **changes})


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def seal(kms: Any, data: bytes) -> bytes:
    return b"".join(kms.encrypt([data], CONTEXT))


def unseal(kms: Any, sealed: bytes) -> bytes:
    return b"".join(kms.decrypt([sealed], CONTEXT))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def renewal_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == RENEWAL_THREAD]


def wait_for(condition: Callable[[], bool], seconds: float = 6.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def assert_no_secret(exc: BaseException, *secrets: str) -> None:
    """Neither the error nor anything chained to it (what a logged traceback shows) holds a secret."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    text = "\n".join(f"{e!s} {e!r} {vars(e)!r}" for e in chain)
    for secret in secrets:
        assert secret not in text


# ----- configuration and start-up errors -----


@pytest.mark.parametrize("value", ["secret/data/statesman", "secret/statesman", "/secret/statesman/"])
def test_kv_path_forms(value: str) -> None:
    assert parse_kv_path(value) == ("secret", "statesman")


def test_kv_path_keeps_nested_paths() -> None:
    assert parse_kv_path("kv/data/team/statesman") == ("kv", "team/statesman")


@pytest.mark.parametrize("value", ["secret", "/secret/", ""])
def test_kv_path_without_a_secret_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="KMS_VAULT_KEY_PATH"):
        parse_kv_path(value)


def test_missing_secret_is_a_clear_startup_error(fake: FakeVault) -> None:
    fake.add_token(SECRET_TOKEN)
    config = vault_config(fake.url, vault_token=SECRET_TOKEN, kms_vault_key_path="secret/data/nothing-here")
    with pytest.raises(ConfigError) as caught:
        build_key_manager(config)
    message = str(caught.value)
    assert "KMS_VAULT_KEY_PATH=secret/data/nothing-here" in message
    assert f"VAULT_ADDR={fake.url}" in message
    assert "not found" in message
    assert_no_secret(caught.value, SECRET_TOKEN)


def test_missing_transit_key_is_a_clear_startup_error(fake: FakeVault) -> None:
    with pytest.raises(ConfigError) as caught:
        build_key_manager(vault_config(fake.url, kms_backend="transit", kms_transit_key="absent"))
    assert "Transit key 'absent' in engine 'transit'" in str(caught.value)
    assert "not found" in str(caught.value)


@pytest.mark.parametrize("backend", ["vault", "transit"])
def test_wrong_token_is_a_clear_startup_error(fake: FakeVault, backend: str) -> None:
    fake.write_secret("secret", "statesman", {"key": new_key()})
    fake.create_transit_key("transit", "statesman")
    with pytest.raises(ConfigError) as caught:
        build_key_manager(vault_config(fake.url, kms_backend=backend, vault_token=SECRET_TOKEN))
    message = str(caught.value)
    assert "permission denied / invalid token" in message
    assert f"VAULT_ADDR={fake.url}" in message
    assert "VAULT_TOKEN" in message
    assert_no_secret(caught.value, SECRET_TOKEN)


@pytest.mark.parametrize("backend", ["vault", "transit"])
def test_unreachable_vault_is_a_clear_startup_error(backend: str) -> None:
    address = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(BackendUnavailable) as caught:
        build_key_manager(vault_config(address, kms_backend=backend, vault_token=SECRET_TOKEN))
    assert caught.value.backend == "vault"
    assert f"VAULT_ADDR={address}" in str(caught.value)
    assert "cannot connect" in str(caught.value)
    assert_no_secret(caught.value, SECRET_TOKEN)
    assert not renewal_threads()


def test_credentials_are_required(fake: FakeVault) -> None:
    with pytest.raises(ConfigError, match="VAULT_TOKEN, VAULT_TOKEN_FILE or VAULT_KUBE_AUTH_ROLE"):
        build_key_manager(vault_config(fake.url, vault_token=None))


@pytest.mark.parametrize("value", ["not base64!", base64.b64encode(b"short").decode(), None])
def test_unusable_key_material_is_a_startup_error(fake: FakeVault, value: str | None) -> None:
    fake.write_secret("secret", "statesman", {"key": value} if value else {"other": "x"})
    with pytest.raises(ConfigError, match="field 'key' must be base64 of a 16, 24 or 32-byte key"):
        build_key_manager(vault_config(fake.url))


# ----- KV v2 key versions -----


def test_kv_key_id_names_path_and_version(fake: FakeVault, closing: Callable[[Any], Any]) -> None:
    fake.write_secret("secret", "statesman", {"key": new_key()})
    fake.write_secret("secret", "statesman", {"key": base64.b64encode(os.urandom(16)).decode()})
    kms = closing(build_key_manager(vault_config(fake.url, kms_vault_key_path="secret/statesman")))
    assert kms.name == "vault"
    assert kms.key_id == "vault:secret/statesman:v2"
    assert unseal(kms, seal(kms, b"aes-128 works too")) == b"aes-128 works too"


def test_rotated_kv_key_still_decrypts_old_versions(fake: FakeVault, admin: Any, closing: Callable[[Any], Any]) -> None:
    fake.write_secret("secret", "statesman", {"key": new_key()})
    config = vault_config(fake.url)
    kms = closing(build_key_manager(config))
    old = seal(kms, b"written under v1")

    admin.secrets.kv.v2.create_or_update_secret("statesman", secret={"key": new_key()}, mount_point="secret")
    kms.check()
    assert kms.key_id == "vault:secret/statesman:v2"
    new = seal(kms, b"written under v2")
    assert unseal(kms, old) == b"written under v1"

    restarted = closing(build_key_manager(config))
    assert restarted.key_id == "vault:secret/statesman:v2"
    assert unseal(restarted, new) == b"written under v2"
    assert unseal(restarted, old) == b"written under v1"
    assert unseal(restarted, old) == b"written under v1"
    reads = [r for r in fake.requests if r.path == "/v1/secret/data/statesman"]
    assert [r.query for r in reads].count("version=1") == 1  # read once, then cached


def test_check_reads_only_metadata_when_nothing_changed(fake: FakeVault, closing: Callable[[Any], Any]) -> None:
    fake.write_secret("secret", "statesman", {"key": new_key()})
    kms = closing(build_key_manager(vault_config(fake.url)))
    data_reads = fake.count("GET", "/v1/secret/data/statesman")
    kms.check()
    assert fake.count("GET", "/v1/secret/metadata/statesman") == 1
    assert fake.count("GET", "/v1/secret/data/statesman") == data_reads


def test_check_reports_a_revoked_token(fake: FakeVault, closing: Callable[[Any], Any]) -> None:
    fake.add_token(SECRET_TOKEN)
    fake.write_secret("secret", "statesman", {"key": new_key()})
    kms = closing(build_key_manager(vault_config(fake.url, vault_token=SECRET_TOKEN)))
    fake.revoke_token(SECRET_TOKEN)
    with pytest.raises(BackendUnavailable, match="permission denied / invalid token") as caught:
        kms.check()
    assert_no_secret(caught.value, SECRET_TOKEN)


def test_destroyed_kv_version_fails_to_decrypt_with_its_name(
    fake: FakeVault, admin: Any, closing: Callable[[Any], Any]
) -> None:
    fake.write_secret("secret", "statesman", {"key": new_key()})
    old = seal(closing(build_key_manager(vault_config(fake.url))), b"state")
    fake.write_secret("secret", "statesman", {"key": new_key()})
    admin.secrets.kv.v2.destroy_secret_versions("statesman", versions=[1], mount_point="secret")
    restarted = closing(build_key_manager(vault_config(fake.url)))
    with pytest.raises(DecryptionFailed, match="vault:secret/statesman:v1"):
        unseal(restarted, old)


def test_state_from_another_kv_path_is_refused(fake: FakeVault, closing: Callable[[Any], Any]) -> None:
    fake.write_secret("secret", "statesman", {"key": new_key()})
    fake.write_secret("secret", "other", {"key": new_key()})
    other = seal(closing(build_key_manager(vault_config(fake.url, kms_vault_key_path="secret/other"))), b"x")
    kms = closing(build_key_manager(vault_config(fake.url)))
    with pytest.raises(KeyNotConfigured, match="vault:secret/other:v1"):  # 503: a key this server lacks
        unseal(kms, other)


# ----- Transit envelopes -----


def transit(fake: FakeVault, closing: Callable[[Any], Any], **changes: Any) -> TransitKeyManager:
    fake.create_transit_key("transit", "statesman")
    manager = build_key_manager(vault_config(fake.url, kms_backend="transit", **changes))
    assert isinstance(manager, TransitKeyManager)
    return closing(manager)


def test_transit_asks_for_one_data_key_per_encryption(fake: FakeVault, closing: Callable[[Any], Any]) -> None:
    kms = transit(fake, closing)
    assert kms.key_id == "transit:statesman"
    sealed = [seal(kms, b"state %d" % i) for i in range(3)]
    assert fake.count("POST", "/v1/transit/datakey/plaintext/statesman") == 3
    assert len(set(sealed)) == 3
    assert fake.count("POST", "/v1/transit/encrypt/statesman") == 0


def test_state_bytes_never_reach_vault(fake: FakeVault, closing: Callable[[Any], Any]) -> None:
    kms = transit(fake, closing)
    state = os.urandom(2 * MIB)
    mark = len(fake.requests)
    sealed = seal(kms, state)
    reader = closing(TransitKeyManager(VaultClient(fake.url, token=ROOT_TOKEN), "transit", "statesman"))
    assert unseal(reader, sealed) == state
    during = fake.requests[mark:]
    assert {r.path for r in during} >= {"/v1/transit/datakey/plaintext/statesman", "/v1/transit/decrypt/statesman"}
    assert max(r.body_size for r in during) < 400


def test_wrapped_data_key_is_vault_ciphertext(fake: FakeVault, admin: Any) -> None:
    fake.create_transit_key("transit", "statesman")
    answer = admin.secrets.transit.generate_data_key("statesman", key_type="plaintext", mount_point="transit")
    ciphertext, plaintext = answer["data"]["ciphertext"], answer["data"]["plaintext"]
    assert ciphertext.startswith("vault:v1:")
    assert base64.b64decode(plaintext) not in base64.b64decode(ciphertext.removeprefix("vault:v1:"))
    decrypted = admin.secrets.transit.decrypt_data("statesman", ciphertext, mount_point="transit")
    assert decrypted["data"]["plaintext"] == plaintext


def test_transit_decrypts_after_the_key_is_rotated(fake: FakeVault, admin: Any, closing: Callable[[Any], Any]) -> None:
    kms = transit(fake, closing)
    old = seal(kms, b"under v1")
    admin.secrets.transit.rotate_key("statesman", mount_point="transit")
    new = seal(kms, b"under v2")
    assert b"vault:v1:" in old[:200]
    assert b"vault:v2:" in new[:200]
    reader = closing(TransitKeyManager(VaultClient(fake.url, token=ROOT_TOKEN), "transit", "statesman"))
    assert unseal(reader, old) == b"under v1"
    assert unseal(reader, new) == b"under v2"
    assert fake.count("POST", "/v1/transit/decrypt/statesman") == 2


def test_transit_caches_unwrapped_data_keys(fake: FakeVault, closing: Callable[[Any], Any]) -> None:
    kms = transit(fake, closing)
    sealed = seal(kms, b"state")
    assert unseal(kms, sealed) == b"state"
    assert fake.count("POST", "/v1/transit/decrypt/statesman") == 0  # the writer keeps the data key it made
    reader = closing(TransitKeyManager(VaultClient(fake.url, token=ROOT_TOKEN), "transit", "statesman"))
    for _ in range(3):
        assert unseal(reader, sealed) == b"state"
    assert fake.count("POST", "/v1/transit/decrypt/statesman") == 1


def test_transit_cache_is_bounded(fake: FakeVault, closing: Callable[[Any], Any]) -> None:
    kms = transit(fake, closing)
    sealed = [seal(kms, b"state %d" % i) for i in range(3)]
    reader = closing(TransitKeyManager(VaultClient(fake.url, token=ROOT_TOKEN), "transit", "statesman", cache_size=2))
    for item in [*sealed, sealed[0]]:
        unseal(reader, item)
    assert fake.count("POST", "/v1/transit/decrypt/statesman") == 4


def test_transit_check_reads_key_metadata(fake: FakeVault, closing: Callable[[Any], Any]) -> None:
    kms = transit(fake, closing)
    before = fake.count("GET", "/v1/transit/keys/statesman")
    kms.check()
    assert fake.count("GET", "/v1/transit/keys/statesman") == before + 1


def test_data_key_vault_cannot_unwrap_fails_to_decrypt(fake: FakeVault, closing: Callable[[Any], Any]) -> None:
    sealed = seal(transit(fake, closing), b"state")
    del fake.transit[("transit", "statesman")]
    fake.create_transit_key("transit", "statesman")  # same name, new key material
    reader = closing(TransitKeyManager(VaultClient(fake.url, token=ROOT_TOKEN), "transit", "statesman"))
    with pytest.raises(DecryptionFailed, match="cannot unwrap"):
        unseal(reader, sealed)


def test_transit_refuses_states_of_other_drivers(fake: FakeVault, closing: Callable[[Any], Any]) -> None:
    fake.write_secret("secret", "statesman", {"key": new_key()})
    kv_sealed = seal(closing(build_key_manager(vault_config(fake.url))), b"state")
    with pytest.raises(KeyNotConfigured, match=r"vault:secret/statesman:v1.*not a Vault Transit key"):
        unseal(transit(fake, closing), kv_sealed)


# ----- tokens -----


@pytest.mark.slow
def test_renewable_token_is_renewed_before_it_expires(fake: FakeVault, closing: Callable[[Any], Any]) -> None:
    fake.add_token(SECRET_TOKEN, ttl=2, renewable=True)
    started = time.monotonic()
    client = closing(VaultClient(fake.url, token=SECRET_TOKEN))
    assert fake.count("GET", "/v1/auth/token/lookup-self") == 1
    assert wait_for(lambda: fake.count("POST", "/v1/auth/token/renew-self") >= 2)
    time.sleep(max(0.0, 2.5 - (time.monotonic() - started)))
    # Without renewal the 2-second token would have expired by now.
    assert client.call("look up the token", lambda c: c.auth.token.lookup_self())["data"]["ttl"] > 0
    assert len(renewal_threads()) == 1
    client.close()
    assert not renewal_threads()


def test_non_expiring_token_is_not_renewed(fake: FakeVault, closing: Callable[[Any], Any]) -> None:
    closing(VaultClient(fake.url, token=ROOT_TOKEN))
    assert not renewal_threads()


def test_non_renewable_expiring_token_is_reported(
    fake: FakeVault, closing: Callable[[Any], Any], caplog: pytest.LogCaptureFixture
) -> None:
    fake.add_token(SECRET_TOKEN, ttl=600, renewable=False)
    with caplog.at_level(logging.WARNING, logger="statesman.kms.vault"):
        closing(VaultClient(fake.url, token=SECRET_TOKEN))
    assert "not renewable" in caplog.text
    assert SECRET_TOKEN not in caplog.text
    assert not renewal_threads()


def jwt_file(tmp_path: Path, jwt: str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzdGF0ZXNtYW4ifQ.c2ln") -> Path:
    path = tmp_path / "token"
    path.write_text(jwt + "\n")
    return path


def test_kubernetes_auth_logs_in_with_role_and_jwt(
    fake: FakeVault, tmp_path: Path, closing: Callable[[Any], Any]
) -> None:
    path = jwt_file(tmp_path)
    fake.add_kube_role("statesman", path.read_text().strip(), mount="k8s-prod")
    fake.write_secret("secret", "statesman", {"key": new_key()})
    client = closing(VaultClient(fake.url, kube_role="statesman", kube_mount="k8s-prod", jwt_path=path))
    kms = VaultKeyManager(client, "secret/statesman")
    assert unseal(kms, seal(kms, b"state")) == b"state"
    assert fake.count("POST", "/v1/auth/k8s-prod/login") == 1
    assert len(renewal_threads()) == 1


@pytest.mark.slow
def test_kubernetes_auth_logs_in_again_when_renewal_fails(
    fake: FakeVault, tmp_path: Path, closing: Callable[[Any], Any]
) -> None:
    path = jwt_file(tmp_path)
    fake.add_kube_role("statesman", path.read_text().strip(), ttl=2)
    client = closing(VaultClient(fake.url, kube_role="statesman", jwt_path=path))
    first = next(t for t in fake.tokens if t.startswith("hvs.fake"))
    fake.revoke_token(first)
    assert wait_for(lambda: fake.count("POST", "/v1/auth/kubernetes/login") >= 2)
    assert fake.count("POST", "/v1/auth/token/renew-self") >= 1
    # The fake counts the login before the client has adopted the new token, so give it a moment.
    assert wait_for(lambda: token_works(client), seconds=2)


def token_works(client: VaultClient) -> bool:
    try:
        client.call("look up the token", lambda c: c.auth.token.lookup_self())
    except BackendUnavailable:
        return False
    return True


def test_kubernetes_auth_with_a_wrong_jwt_is_a_startup_error(fake: FakeVault, tmp_path: Path) -> None:
    fake.add_kube_role("statesman", "the-real-jwt")
    with pytest.raises(ConfigError) as caught:
        VaultClient(fake.url, kube_role="statesman", jwt_path=jwt_file(tmp_path, "a-stolen-jwt"))
    assert "VAULT_KUBE_AUTH_ROLE=statesman" in str(caught.value)
    assert "permission denied" in str(caught.value)
    assert_no_secret(caught.value, "a-stolen-jwt")


def test_kubernetes_auth_with_an_unknown_role_is_a_startup_error(fake: FakeVault, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match='invalid role name "nobody"'):
        VaultClient(fake.url, kube_role="nobody", jwt_path=jwt_file(tmp_path))


def test_kubernetes_auth_without_a_jwt_file_is_a_startup_error(fake: FakeVault, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the service-account token"):
        VaultClient(fake.url, kube_role="statesman", jwt_path=tmp_path / "absent")
