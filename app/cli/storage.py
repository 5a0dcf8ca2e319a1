"""``flask storage gc``: find, and with ``--delete`` remove, storage objects that no state version references."""

from __future__ import annotations

from datetime import timedelta

import click
from flask.cli import AppGroup

from app.cli.admin import _actor, _domain_errors
from app.repositories import storage_gc
from app.repositories.audit import record_event
from config import parse_duration

storage_cli = AppGroup("storage", help="Storage maintenance.")


@storage_cli.command("gc")
@click.option("--delete", "delete", is_flag=True, help="Delete what was found (default: only report it).")
@click.option(
    "--grace",
    default="1h",
    show_default=True,
    help="Only objects and temporary files older than this count: younger ones may belong to a write in flight.",
)
@click.option("--verbose", "-v", is_flag=True, help="List every key found.")
@_domain_errors
def gc(delete: bool, grace: str, verbose: bool) -> None:
    """Report objects no state version references and stale temporary files; delete them with --delete."""
    found = storage_gc.find_garbage(timedelta(seconds=parse_duration("--grace", grace)))
    click.echo(
        f"{len(found.objects)} unreferenced object(s) and {len(found.incomplete)} incomplete write(s) older than "
        f"{grace}: {found.size} byte(s)"
    )
    if found.young:
        click.echo(f"{found.young} younger unreferenced object(s) or incomplete write(s) kept (may be in flight)")
    if verbose:
        for item in found.objects:
            click.echo(f"object\t{item.key}\t{item.size}\t{item.modified_at.isoformat(timespec='seconds')}Z")
        for item in found.incomplete:
            click.echo(f"incomplete\t{item.key}\t{item.size}\t{item.modified_at.isoformat(timespec='seconds')}Z")
    if not delete:
        if found.objects or found.incomplete:
            click.echo("nothing deleted; run again with --delete to remove them")
        return
    deleted = freed = 0
    for item in storage_gc.delete_garbage(found):
        deleted += 1
        freed += item.size
    record_event("storage.gc", "ok", _actor(), deleted=deleted, size=freed)
    click.echo(f"deleted {deleted} item(s), {freed} byte(s)")
