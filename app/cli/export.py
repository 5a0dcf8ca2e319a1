"""``flask export`` and ``flask import``: the logical backup of a whole server, and its restore into another."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import Flask
from flask.cli import with_appcontext

from app.cli.admin import _domain_errors
from app.repositories.backup import Exporter, Importer


@click.command("export")
@click.option(
    "--output",
    "-o",
    "output",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="A new or empty directory (created 0700; its files 0600: it holds plaintext states and token hashes).",
)
@with_appcontext
@_domain_errors
def export_command(output: Path) -> None:
    """Export every organization, user, role, workspace, token hash, signing key, state version and audit event."""
    with Exporter(output) as exporter:
        exporter.write_tables()
        version_ids = exporter.version_ids()
        with click.progressbar(version_ids, label="state versions", file=sys.stderr) as bar:
            for version_id in bar:
                exporter.write_version(version_id)
        manifest = exporter.finish()
    for version_id in manifest["skipped_versions"]:
        click.echo(f"skipped state version {version_id}: deleted by retention during the export", err=True)
    counts = ", ".join(f"{count} {name}" for name, count in manifest["counts"].items())
    click.echo(f"exported to {output}: {counts}")


@click.command("import")
@click.argument("path", type=click.Path(path_type=Path, file_okay=False, exists=True))
@with_appcontext
@_domain_errors
def import_command(path: Path) -> None:
    """Import the export at PATH; rows already present are checked and skipped, so it can run again."""
    importer = Importer(path)
    if importer.schema_differs:
        click.echo(
            f"note: the export was made at schema revision {importer.manifest['source'].get('schema_revision')}, "
            "this database is at another one",
            err=True,
        )
    importer.import_tables()
    rows = importer.version_rows()
    with click.progressbar(rows, label="state versions", file=sys.stderr) as bar:
        for row in bar:
            importer.import_version(row)
    report = importer.finish()
    tables = sorted(set(report.inserted) | set(report.present))
    for name in tables:
        click.echo(f"{name}: {report.inserted.get(name, 0)} imported, {report.present.get(name, 0)} already present")
    for conflict in report.conflicts:
        click.echo(f"conflict: {conflict}", err=True)
    if report.conflicts:
        click.echo(f"{len(report.conflicts)} conflict(s) left as they are in the target", err=True)
        sys.exit(1)
    click.echo(f"imported {path}")


def register_export_commands(app: Flask) -> None:
    """Attach ``flask export`` and ``flask import`` to ``app``."""
    app.cli.add_command(export_command)
    app.cli.add_command(import_command)
