"""Sign-in through the organization's identity provider (OpenID Connect relying party, on Authlib).

Authlib does the protocol: issuer discovery, the authorization code flow with PKCE S256, ``state`` and ``nonce``
kept in the browser's session, and id-token verification (signature against the issuer's JWKS, ``iss``, ``aud``,
``exp``, ``nonce``). This module adds what is ours: which claims make a user, and which organizations the user's
groups map to (``OPENTACO_AUTH_GROUP_ORGS``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app
from werkzeug.wrappers import Response

from app.core.errors import NotFound
from app.extensions import config as current_config
from app.models import Organization, User
from app.repositories.orgs import get_org_by_name, join_org, list_member_orgs
from app.repositories.users import ensure_user, set_email
from config import Config

# Authlib (with requests and joserfc under it) is imported where sign-in is used: most servers never configure it.
if TYPE_CHECKING:
    from authlib.integrations.flask_client import OAuth

log = logging.getLogger("statesman.auth.oidc")

PROVIDER = "idp"
# The browser's session cookie carries the sign-in in progress (Authlib's state, nonce and PKCE verifier, and
# Terraform's request); it is signed with OPENTACO_SECRET_KEY, so a changed cookie is an unknown sign-in.
SESSION_COOKIE = "statesman_signin"
SIGN_IN_LIFETIME = timedelta(minutes=10)
ID_TOKEN_LEEWAY_SECONDS = 30
HTTP_TIMEOUT_SECONDS = 10.0


class SignInFailed(Exception):
    """The identity provider's answer cannot be trusted or is incomplete; the message is safe to show."""


class ProviderUnreachable(SignInFailed):
    """The identity provider did not answer (a retry may work, unlike with a refused token)."""


@dataclass(frozen=True)
class Identity:
    """The verified claims of one sign-in."""

    subject: str
    email: str | None
    groups: tuple[str, ...]


def init_app(app: Flask, config: Config) -> None:
    """Register the identity provider with Authlib when ``OPENTACO_AUTH_ISSUER`` is set."""
    # Authlib logs the PKCE verifier at debug level; it must never reach the log whatever LOG_LEVEL says.
    logging.getLogger("authlib").setLevel(logging.WARNING)
    if not config.oidc_enabled:
        return
    from authlib.integrations.flask_client import OAuth

    app.config.update(
        SECRET_KEY=config.secret_key,
        SESSION_COOKIE_NAME=SESSION_COOKIE,
        SESSION_COOKIE_HTTPONLY=True,
        # Lax: the identity provider sends the browser back with a top-level GET, which must carry the cookie.
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=bool(config.tls_cert) or (config.public_base_url or "").startswith("https://"),
        PERMANENT_SESSION_LIFETIME=SIGN_IN_LIFETIME,
    )
    oauth = OAuth(app)
    metadata: dict[str, Any] = {}
    if config.auth_authorize_url:
        metadata["authorize_url"] = config.auth_authorize_url
    if config.auth_token_url:
        metadata["access_token_url"] = config.auth_token_url
    oauth.register(
        PROVIDER,
        client_id=config.auth_client_id,
        client_secret=config.auth_client_secret,
        server_metadata_url=f"{config.auth_issuer}/.well-known/openid-configuration",
        client_kwargs={
            "scope": config.auth_scopes,
            "code_challenge_method": "S256",
            # A public client (no secret) authenticates by PKCE alone.
            "token_endpoint_auth_method": "client_secret_basic" if config.auth_client_secret else "none",
            # Authlib's requests session has no timeout unless given one: an unresponsive provider must not hold
            # a worker for ever.
            "default_timeout": HTTP_TIMEOUT_SECONDS,
        },
        **metadata,
    )
    app.extensions["statesman_oidc"] = oauth


def _client() -> Any:
    oauth: OAuth | None = current_app.extensions.get("statesman_oidc")
    if oauth is None:
        raise NotFound("sign-in through an identity provider is not configured on this server (OPENTACO_AUTH_ISSUER)")
    return oauth.create_client(PROVIDER)


def start_sign_in(callback_url: str) -> Response:
    """The redirect to the identity provider; Authlib keeps state, nonce and verifier in the session."""
    client = _client()
    from authlib.integrations.base_client.errors import OAuthError

    try:
        response: Response = client.authorize_redirect(callback_url)
    except (OSError, ValueError, OAuthError) as exc:
        log.warning("identity provider discovery failed: %s", type(exc).__name__)
        raise ProviderUnreachable("the identity provider cannot be reached; try again later") from None
    return response


def finish_sign_in() -> Identity:
    """Verify the identity provider's callback (state, code exchange, id token) and return the identity."""
    client = _client()
    with _checked_answer():
        # Authlib verifies the id token inside the code exchange, with the nonce kept in the session.
        token = client.authorize_access_token(claims_options=_claims_options(client), leeway=ID_TOKEN_LEEWAY_SECONDS)
    claims = token.get("userinfo")
    if not claims:
        raise SignInFailed("the identity provider returned no id token")
    return identity_from_claims(dict(claims))


def verify_id_token(id_token: str) -> Identity:
    """The identity in an id token a client already holds, checked as a sign-in checks it (no nonce to match).

    Same checks as ``finish_sign_in``: signature against the provider's JWKS, ``iss``, ``aud`` (our client id),
    ``exp``, ``iat``, ``sub``; ``IDToken`` because there is no authorization request whose nonce could be compared.
    """
    client = _client()
    from authlib.oidc.core import IDToken

    with _checked_answer():
        claims = client.parse_id_token(
            {"id_token": id_token},
            nonce=None,
            claims_options=_claims_options(client),
            claims_cls=IDToken,
            leeway=ID_TOKEN_LEEWAY_SECONDS,
        )
    if not claims:
        raise SignInFailed("no id token given")
    return identity_from_claims(dict(claims))


def _claims_options(client: Any) -> dict[str, Any]:
    """The id-token claims we insist on, after checking that discovery names the configured issuer."""
    metadata = client.load_server_metadata()
    if metadata.get("issuer", "").rstrip("/") != _configured_issuer():
        # OpenID Connect Discovery 1.0, section 4.3: the document's issuer must be the one we asked.
        raise SignInFailed("the identity provider's discovery document names another issuer")
    # Authlib checks ``aud`` only through ``azp`` unless told to: a token for another client naming us as its
    # authorized party would pass. OpenID Connect Core 3.1.3.7 says ``aud`` must contain our client id.
    return {
        "iss": {"essential": True, "values": [metadata["issuer"]]},
        "aud": {"essential": True, "values": [client.client_id]},
        "sub": {"essential": True},
    }


@contextmanager
def _checked_answer() -> Iterator[None]:
    """Turn what Authlib and joserfc raise about the provider's answer into ``SignInFailed`` (safe to show)."""
    from authlib.integrations.base_client.errors import OAuthError
    from joserfc.errors import JoseError

    try:
        yield
    except SignInFailed:
        raise
    except OAuthError as exc:
        # The error code is the provider's or Authlib's (mismatching_state, access_denied...); no secrets in it.
        raise SignInFailed(f"sign-in refused: {exc.error}") from None
    except JoseError as exc:
        # joserfc's descriptions name the failed check (a claim name, "expired"), never the token's contents.
        raise SignInFailed(f"the id token is not valid: {exc.error}: {exc.description}") from None
    except (OSError, ValueError) as exc:
        log.warning("identity provider token exchange failed: %s", type(exc).__name__)
        raise ProviderUnreachable("the identity provider cannot be reached; try again later") from None


def _configured_issuer() -> str:
    return str(current_config().auth_issuer)


def identity_from_claims(claims: dict[str, Any]) -> Identity:
    """Subject, email (only when the provider says it is verified, or says nothing) and groups."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > 255:
        raise SignInFailed("the id token has no usable subject")
    email = claims.get("email")
    if not isinstance(email, str) or claims.get("email_verified") is False or len(email) > 255:
        email = None
    raw_groups = claims.get(current_config().auth_groups_claim, [])
    if isinstance(raw_groups, str):
        raw_groups = [raw_groups]
    groups = tuple(g for g in raw_groups if isinstance(g, str)) if isinstance(raw_groups, list) else ()
    return Identity(subject, email, groups)


def sign_in_user(identity: Identity) -> tuple[User, list[Organization]]:
    """The user for ``identity`` (created on first sign-in), email from the provider, and the organizations its
    groups map to, joined now with the mapped role (new members without one get the ``default`` role)."""
    user = ensure_user(identity.subject, identity.email)
    orgs: dict[str, Organization] = {}
    for group, org_name, role in current_config().auth_group_orgs:
        if group not in identity.groups:
            continue
        org = get_org_by_name(org_name)
        if org is None:
            log.warning("OPENTACO_AUTH_GROUP_ORGS names organization %r, which does not exist", org_name)
            continue
        try:
            join_org(org, user, f"oidc:{group}", role)
        except NotFound:
            log.warning("OPENTACO_AUTH_GROUP_ORGS names role %r, which %r does not have", role, org_name)
        orgs[org.id] = org
    first_org = next(iter(orgs), None)
    set_email(user, identity.email, identity.subject, "oidc", first_org)
    return user, list(orgs.values())


def token_org(user: User, mapped: list[Organization]) -> tuple[Organization | None, str]:
    """The one organization a sign-in token (``terraform login``, ``/v1/auth/exchange``) belongs to.

    With ``OPENTACO_AUTH_GROUP_ORGS`` it is the organization the user's current groups map to, so leaving the
    group at the identity provider stops new tokens at once; without a mapping, the user's one membership. A user
    in several organizations gets no token here (an administrator issues one with ``flask tokens create``).
    """
    candidates = mapped if current_config().auth_group_orgs else list_member_orgs(user.id)
    if len(candidates) == 1:
        return candidates[0], ""
    if not candidates:
        return None, f"{user.subject} belongs to no organization on this server"
    names = ", ".join(sorted(org.name for org in candidates))
    return None, f"{user.subject} belongs to several organizations ({names}); terraform login needs exactly one"
