"""``flask signing-keys``: list, rotate and prune the keys that sign the access tokens of ``/v1/auth``."""

from __future__ import annotations

from datetime import timedelta

import click
from flask.cli import AppGroup

from app.cli.admin import _actor, _domain_errors
from app.core.clock import utcnow
from app.repositories.signing_keys import current_signing_key, prune_signing_keys, published_keys, rotate_signing_key
from config import parse_duration

signing_keys_cli = AppGroup("signing-keys", help="The keys that sign /v1/auth access tokens (/oidc/jwks.json).")
# Access tokens of /v1/auth live at most an hour; a retired key is kept a day so every token it signed expires first.
DEFAULT_KEEP = "24h"


@signing_keys_cli.command("list")
def list_keys() -> None:
    """Show every published key: its kid, whether it signs now, and when it was created and retired."""
    current_signing_key()
    for key in published_keys():
        state = "signing" if key.slot is not None else f"retired {key.retired_at:%Y-%m-%dT%H:%M:%SZ}"
        click.echo(f"{key.kid}\t{key.algorithm}\t{state}\tcreated {key.created_at:%Y-%m-%dT%H:%M:%SZ}")


@signing_keys_cli.command("rotate")
@_domain_errors
def rotate() -> None:
    """Make a new signing key; the old one stays published so its tokens verify until they expire."""
    key = rotate_signing_key(_actor())
    click.echo(f"new signing key {key.kid}; the previous key stays in /oidc/jwks.json until pruned")


@signing_keys_cli.command("prune")
@click.option("--retired-for", default=DEFAULT_KEEP, show_default=True, help="Only keys retired at least this long.")
@_domain_errors
def prune(retired_for: str) -> None:
    """Delete retired keys whose tokens have all expired."""
    keep = timedelta(seconds=parse_duration("--retired-for", retired_for))
    removed = prune_signing_keys(utcnow() - keep, _actor())
    click.echo(f"removed {len(removed)} retired key(s)" + (f": {', '.join(removed)}" if removed else ""))
