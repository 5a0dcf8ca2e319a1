"""``flask import-from``: read the storage of the servers Statesman replaces and import their states as workspaces.

Every version goes through the guarded write (lock, serial and lineage rules, encryption, audit) and keeps the time
it was written at the source. A version already present (same serial, same bytes) is skipped, so an import can be
repeated; ``--dry-run`` reads and decrypts everything, reports what would happen and writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, TYPE_CHECKING

import click
from flask.cli import AppGroup

from app.cli.admin import _actor, _domain_errors
from app.core.clock import utcnow
from app.core.errors import Conflict, DecryptionFailed, InvalidInput, LockConflict, StatesmanError
from app.core.statefile import StateBody
from app.extensions import config
from app.models import Organization, Workspace
from app.repositories import orgs, state_versions, workspaces
from config import ConfigError

# The sources (boto3, psycopg2, hvac under them) are imported by the commands that read them: every app registers
# these commands, and a server process never runs them.
if TYPE_CHECKING:
    from app.drivers.sources import http_backend
    from app.drivers.sources.blobs import BlobSource

import_cli = AppGroup("import-from", help="Import states from the servers Statesman replaces.")


@dataclass(frozen=True)
class Candidate:
    """One version to import: where it was found, how to read its plaintext, and when it was written there."""

    label: str
    read: Callable[[], bytes]
    created_at: datetime | None


@dataclass
class Outcome:
    """What happened to one workspace's versions."""

    imported: int = 0
    present: int = 0
    forced: int = 0
    failed: str | None = None
    lines: list[str] = field(default_factory=list)


class Importer:
    """Imports version histories into workspaces, creating organizations and workspaces as needed."""

    def __init__(self, dry_run: bool) -> None:
        self.dry_run = dry_run
        self.actor = _actor()
        self.totals = {"workspaces": 0, "imported": 0, "present": 0, "forced": 0, "failed": 0}

    def run(self, org_name: str, name: str, history: list[Candidate]) -> Outcome:
        """Import ``history`` (oldest first) into ``org_name/name`` and print one line per version."""
        outcome = Outcome()
        try:
            self._import(org_name, name, history, outcome)
        except StatesmanError as exc:
            outcome.failed = str(exc)
        verb = "would import" if self.dry_run else "imported"
        summary = f"{org_name}/{name}: {verb} {outcome.imported} version(s), {outcome.present} already present"
        if outcome.forced:
            summary += f", {outcome.forced} past the serial/lineage guard (forced, audited)"
        if outcome.failed:
            summary += f"; stopped: {outcome.failed}"
        click.echo(summary)
        for line in outcome.lines:
            click.echo(f"  {line}")
        self.totals["workspaces"] += 1
        for key in ("imported", "present", "forced"):
            self.totals[key] += getattr(outcome, key)
        self.totals["failed"] += bool(outcome.failed)
        return outcome

    def _import(self, org_name: str, name: str, history: list[Candidate], outcome: Outcome) -> None:
        org = self._org(org_name, outcome)
        workspace = workspaces.get_workspace(org, name) if org else None
        if workspace is None and not self.dry_run:
            assert org is not None
            workspace, created = workspaces.ensure_workspace(org, name, self.actor)
            if created:
                outcome.lines.append(f"created workspace {org_name}/{name}")
        elif workspace is None:
            outcome.lines.append(f"would create workspace {org_name}/{name}")
        previous: str | None = None  # sha256 of the source's previous version, once it is in the workspace
        for candidate in history:
            with StateBody.from_bytes(candidate.read(), config().max_state_size) as body:
                summary = body.validate()
                described = f"serial {summary.serial} from {candidate.label}"
                present = workspace is not None and (
                    state_versions.find_version_with_content(workspace, summary.serial, body.sha256) is not None
                )
                if present:
                    outcome.present += 1
                    outcome.lines.append(f"= {described}: already present")
                elif self.dry_run or workspace is None:
                    outcome.imported += 1
                    outcome.lines.append(f"+ {described}")
                else:
                    self._write(workspace, body, candidate, previous, outcome, described)
                previous = body.sha256

    def _org(self, name: str, outcome: Outcome) -> Organization | None:
        org = orgs.get_org_by_name(name)
        if org is not None:
            return org
        if self.dry_run:
            outcome.lines.append(f"would create organization {name}")
            return None
        org = orgs.create_org(name, created_by=self.actor)
        outcome.lines.append(f"created organization {name}")
        return org

    def _write(
        self,
        workspace: Workspace,
        body: StateBody,
        candidate: Candidate,
        previous: str | None,
        outcome: Outcome,
        described: str,
    ) -> None:
        imported = state_versions.Imported(candidate.created_at or utcnow(), candidate.label)
        try:
            state_versions.import_state_version(workspace, body, self.actor, imported)
        except LockConflict as exc:
            raise StatesmanError(f"the workspace is locked ({exc}); unlock it and run the import again") from exc
        except Conflict as refused:
            current = state_versions.get_current_version(workspace)
            # The old servers accepted any write, so their own history may go back in serial or change lineage;
            # that is forced (audited). A state of the workspace that did not come from this history is never
            # overwritten: then the guard's answer stands.
            if previous is None or current is None or current.sha256 != previous:
                raise StatesmanError(f"{described} refused: {refused.message}") from refused
            state_versions.import_state_version(workspace, body, self.actor, imported, force=True)
            outcome.forced += 1
            outcome.imported += 1
            outcome.lines.append(f"! {described}: forced, the source's history {_why(refused.message)}")
            return
        outcome.imported += 1
        outcome.lines.append(f"+ {described}")

    def finish(self) -> None:
        """Print the totals line."""
        t = self.totals
        verb = "would import" if self.dry_run else "imported"
        click.echo(
            f"{'dry run: ' if self.dry_run else ''}{t['workspaces']} workspace(s): {verb} {t['imported']} version(s), "
            f"{t['present']} already present, {t['forced']} forced, {t['failed']} workspace(s) stopped"
        )
        if t["failed"]:
            raise click.exceptions.Exit(1)


def _why(message: str) -> str:
    if message.startswith("lineage"):
        return "changes lineage here"
    return "does not increase the serial here"


# --- the Go HTTP backend -------------------------------------------------------------------------------------


@import_cli.command("http-backend")
@click.option(
    "--source",
    required=True,
    metavar="fs:DIR | s3://BUCKET[/PREFIX] | postgres://...",
    help="Where the backend stored its states: its fs directory, its S3 bucket, or its PostgreSQL database "
    "(table states).",
)
@click.option(
    "--entries",
    type=click.File("r"),
    required=True,
    help="The states to look for, one 'project/name[:password]' a line ('-' reads stdin).",
)
@click.option(
    "--org",
    "org_name",
    default=None,
    help="Put every state in this organization, as workspace NAME (default: organization PROJECT).",
)
@click.option(
    "--password",
    envvar="IMPORT_PASSWORD",
    default=None,
    help="The basic-auth password for entries without their own [env IMPORT_PASSWORD].",
)
@click.option(
    "--aes-key", envvar="IMPORT_AES_KEY", default=None, help="The backend's base64 AES key [env IMPORT_AES_KEY]."
)
@click.option("--vault-kv", default=None, metavar="MOUNT/PATH", help="A KV v2 secret whose 'key' field is the AES key.")
@click.option("--vault-transit", default=None, metavar="KEY", help="The Transit key the states were encrypted with.")
@click.option("--transit-mount", default="transit", show_default=True, help="The Transit engine's mount.")
@click.option(
    "--dry-run", is_flag=True, help="Read and decrypt everything, report what would be imported, write nothing."
)
@_domain_errors
def import_http_backend(
    source: str,
    entries: IO[str],
    org_name: str | None,
    password: str | None,
    aes_key: str | None,
    vault_kv: str | None,
    vault_transit: str | None,
    transit_mount: str,
    dry_run: bool,
) -> None:
    """Import the states of the Go HTTP state backend (/state/<project>/<name>), one workspace each.

    The backend stored states under hashes of their names, so only the states listed in --entries are found; ids
    left over are reported as unmatched. Vault settings come from VAULT_ADDR and VAULT_TOKEN (or Kubernetes auth).
    """
    from app.drivers.sources import http_backend

    listed = http_backend.parse_entries(entries.read(), password)
    targets = [(org_name or entry.project, entry.name, entry) for entry in listed]
    _refuse_duplicates([(org, name) for org, name, _ in targets])
    with _decryptor(aes_key, vault_kv, vault_transit, transit_mount) as decryptor:
        states = http_backend.open_states(source, config())
        try:
            stored = states.ids()
            click.echo(f"{len(stored)} state(s) in {states.description}, {len(listed)} entr(y/ies) to look for")
            importer = Importer(dry_run)
            found_ids: set[str] = set()
            for org, name, entry in targets:
                if entry.state_id not in stored:
                    click.echo(f"not found: {entry.path} (id {entry.state_id})")
                    continue
                found_ids.add(entry.state_id)
                click.echo(f"found: {entry.path} (id {entry.state_id})")
                importer.run(org, name, [_stored_candidate(states, entry.state_id, decryptor)])
            for state_id in stored:
                if state_id not in found_ids:
                    click.echo(f"unmatched: {state_id} (no entry has this id)")
            importer.finish()
        finally:
            states.close()


def _stored_candidate(states: http_backend.StateSource, state_id: str, decryptor: http_backend.Decryptor) -> Candidate:
    stored = states.read(state_id)

    def plaintext() -> bytes:
        try:
            return decryptor.decrypt(stored.data)
        except DecryptionFailed:
            # Encryption could be switched on for a backend that already held states: those stayed plain JSON.
            if stored.data.lstrip().startswith(b"{"):
                return stored.data
            raise

    return Candidate(f"{states.description} {state_id}", plaintext, stored.modified)


@contextmanager
def _decryptor(
    aes_key: str | None, vault_kv: str | None, vault_transit: str | None, transit_mount: str
) -> Iterator[http_backend.Decryptor]:
    from app.drivers.kms.vault_client import VaultClient
    from app.drivers.sources import http_backend

    chosen = [
        flag
        for flag, value in (("--aes-key", aes_key), ("--vault-kv", vault_kv), ("--vault-transit", vault_transit))
        if value
    ]
    if len(chosen) > 1:
        raise InvalidInput(f"choose one of {', '.join(chosen)}")
    if aes_key:
        yield http_backend.AesDecryptor(http_backend.parse_aes_key(aes_key))
        return
    if not (vault_kv or vault_transit):
        yield http_backend.NoDecryption()
        return
    settings = config()
    if not settings.vault_addr:
        raise ConfigError(f"{chosen[0]} needs VAULT_ADDR (and VAULT_TOKEN or VAULT_KUBE_AUTH_ROLE)")
    client = VaultClient(
        settings.vault_addr,
        token=settings.vault_token,
        kube_role=settings.vault_kube_auth_role,
        kube_mount=settings.vault_kube_auth_name,
    )
    try:
        if vault_kv:
            yield http_backend.AesDecryptor(http_backend.read_kv_key(client, vault_kv))
        else:
            assert vault_transit is not None
            yield http_backend.TransitDecryptor(client, vault_transit, transit_mount)
    finally:
        client.close()


def _refuse_duplicates(targets: list[tuple[str, str]]) -> None:
    seen: set[tuple[str, str]] = set()
    for target in targets:
        if target in seen:
            raise InvalidInput(f"two entries would both become workspace {target[0]}/{target[1]}")
        seen.add(target)


# --- OpenTaco Statesman --------------------------------------------------------------------------------------


@import_cli.command("opentaco")
@click.option(
    "--source",
    required=True,
    metavar="s3://BUCKET[/PREFIX] | fs:DIR",
    help="OpenTaco's bucket and prefix (<prefix>/<org uuid>/<unit uuid>/...), or a copy of it in a directory.",
)
@click.option(
    "--database",
    required=True,
    metavar="URL",
    help="OpenTaco's SQL database (its organizations and units tables name the uuids).",
)
@click.option(
    "--org-map",
    multiple=True,
    metavar="UUID=NAME",
    help="Import the organization UUID as NAME (repeatable); overrides its name in the database.",
)
@click.option("--dry-run", is_flag=True, help="Read everything, report what would be imported, write nothing.")
@_domain_errors
def import_opentaco(source: str, database: str, org_map: tuple[str, ...], dry_run: bool) -> None:
    """Import OpenTaco Statesman's units as workspaces, each with its versions in order and the current state last."""
    from app.drivers.sources import opentaco
    from app.drivers.sources.blobs import open_blobs

    names = opentaco.read_names(database)
    org_names = {**names.orgs, **_parse_org_map(org_map)}
    blobs = open_blobs(source, config())
    try:
        layout = opentaco.scan(blobs)
        click.echo(f"{len(layout.units)} unit(s) in {blobs.description}")
        importer = Importer(dry_run)
        seen: set[tuple[str, str]] = set()
        for (org_uuid, unit_uuid), unit in sorted(layout.units.items()):
            org_name, unit_name = org_names.get(org_uuid), names.units.get(unit_uuid)
            where = f"{org_uuid}/{unit_uuid}"
            if org_name is None or unit_name is None:
                missing = "organization" if org_name is None else "unit"
                click.echo(f"unmatched: {where} ({len(unit.versions)} object(s); no {missing} with this uuid)")
                continue
            if not unit.versions:
                click.echo(f"found: {where} = {org_name}/{unit_name}, no state to import")
                continue
            if (org_name, unit_name) in seen:
                click.echo(f"unmatched: {where} (another unit already became {org_name}/{unit_name})")
                continue
            seen.add((org_name, unit_name))
            click.echo(f"found: {where} = {org_name}/{unit_name}")
            history = [
                Candidate(f"{blobs.description}{version.key}", _reader(blobs, version.key), version.created_at)
                for version in unit.versions
            ]
            importer.run(org_name, unit_name, history)
        for stray in [*layout.strays, *(key for unit in layout.units.values() for key in unit.strays)]:
            click.echo(f"unmatched: {stray} (not part of the layout)")
        importer.finish()
    finally:
        blobs.close()


def _reader(blobs: BlobSource, key: str) -> Callable[[], bytes]:
    return lambda: blobs.read(key)


def _parse_org_map(pairs: tuple[str, ...]) -> dict[str, str]:
    mapped: dict[str, str] = {}
    for pair in pairs:
        uuid, equals, name = pair.partition("=")
        if not equals or not uuid or not name:
            raise InvalidInput(f"--org-map {pair!r}: expected UUID=NAME")
        mapped[uuid] = name
    return mapped
