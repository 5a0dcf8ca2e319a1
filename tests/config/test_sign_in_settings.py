"""Settings of sign-in through an identity provider and ``terraform login``."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import ConfigError, load_config


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"STATESMAN_DATA_DIR": str(tmp_path), "KMS_BACKEND": "none", "OPENTACO_SECRET_KEY": "s"}


def error_of(env: dict[str, str], **extra: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config({**env, **extra})
    return str(caught.value)


def test_off_by_default(env: dict[str, str]) -> None:
    config = load_config(env)
    assert not config.oidc_enabled and config.auth_group_orgs == ()
    assert config.terraform_token_ttl_seconds == 30 * 86400 and config.auth_groups_claim == "groups"


def test_issuer_client_and_mapping(env: dict[str, str], tmp_path: Path) -> None:
    secret_file = tmp_path / "client-secret"
    secret_file.write_text("from-a-file\n")
    config = load_config(
        {
            **env,
            "OPENTACO_AUTH_ISSUER": "https://idp.example.test/",
            "OPENTACO_AUTH_CLIENT_ID": "statesman",
            "OPENTACO_AUTH_CLIENT_SECRET_FILE": str(secret_file),
            "OPENTACO_AUTH_GROUP_ORGS": "platform=acme:admin, devs=acme ,payments=pay",
            "OPENTACO_AUTH_GROUPS_CLAIM": "roles",
            "OPENTACO_TERRAFORM_TOKEN_TTL": "12h",
        }
    )
    assert config.oidc_enabled and config.auth_issuer == "https://idp.example.test"
    assert config.auth_client_secret == "from-a-file"
    assert config.auth_group_orgs == (("platform", "acme", "admin"), ("devs", "acme", None), ("payments", "pay", None))
    assert config.auth_groups_claim == "roles" and config.terraform_token_ttl_seconds == 12 * 3600
    # Authentication disabled means nobody signs in, so there is no terraform login either.
    assert not load_config(
        {
            **env,
            "OPENTACO_AUTH_ISSUER": "https://idp.example.test",
            "OPENTACO_AUTH_CLIENT_ID": "x",
            "OPENTACO_AUTH_DISABLE": "true",
        }
    ).oidc_enabled


@pytest.mark.parametrize(
    "settings, words",
    [
        ({"OPENTACO_AUTH_ISSUER": "https://idp.example.test"}, "needs OPENTACO_AUTH_CLIENT_ID"),
        ({"OPENTACO_AUTH_CLIENT_ID": "statesman"}, "need OPENTACO_AUTH_ISSUER"),
        ({"OPENTACO_AUTH_GROUP_ORGS": "a=b"}, "need OPENTACO_AUTH_ISSUER"),
        ({"OPENTACO_AUTH_ISSUER": "http://idp.example.test", "OPENTACO_AUTH_CLIENT_ID": "x"}, "https://"),
        ({"OPENTACO_AUTH_ISSUER": "http://127.0.0.1.example.test", "OPENTACO_AUTH_CLIENT_ID": "x"}, "https://"),
        (
            {"OPENTACO_AUTH_ISSUER": "https://i.test", "OPENTACO_AUTH_CLIENT_ID": "x", "OPENTACO_AUTH_SCOPES": "email"},
            "must include openid",
        ),
        (
            {"OPENTACO_AUTH_ISSUER": "https://i.test", "OPENTACO_AUTH_CLIENT_ID": "x", "OPENTACO_AUTH_GROUP_ORGS": "x"},
            "GROUP=ORG",
        ),
        (
            {
                "OPENTACO_AUTH_ISSUER": "https://i.test",
                "OPENTACO_AUTH_CLIENT_ID": "x",
                "OPENTACO_AUTH_GROUP_ORGS": "=a",
            },
            "GROUP=ORG",
        ),
        ({"OPENTACO_TERRAFORM_TOKEN_TTL": "forever"}, "OPENTACO_TERRAFORM_TOKEN_TTL"),
    ],
)
def test_invalid_settings_stop_start_up(env: dict[str, str], settings: dict[str, str], words: str) -> None:
    assert words in error_of(env, **settings)


def test_loopback_issuer_over_http_is_allowed(env: dict[str, str]) -> None:
    config = load_config({**env, "OPENTACO_AUTH_ISSUER": "http://127.0.0.1:8900", "OPENTACO_AUTH_CLIENT_ID": "x"})
    assert config.oidc_enabled
