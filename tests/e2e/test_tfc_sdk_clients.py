"""The official Python TFE SDK (pytfe 1.5.0) and terrasnek 0.1.14 against a live HTTPS server (gunicorn workers)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pytfe import TFEClient, TFEConfig
from pytfe.errors import AuthError, NotFound, TFEError
from pytfe.models import (
    OrganizationCreateOptions,
    OrganizationUpdateOptions,
    StateVersionCreateOptions,
    StateVersionListOptions,
    WorkspaceCreateOptions,
    WorkspaceListOptions,
    WorkspaceLockOptions,
    WorkspaceUpdateOptions,
)
from terrasnek.api import TFC
from terrasnek.exceptions import TFCHTTPConflict, TFCHTTPNotFound, TFCHTTPUnauthorized

from tests.live_server import LiveServer, start_server
from tests.tfc_api.tls import Certificates, make_certificates, tls_environment

pytestmark = [
    pytest.mark.e2e,
    # pytfe hands TFEConfig.ca_bundle to httpx as a path, which httpx 0.28 deprecates: their warning, not ours.
    pytest.mark.filterwarnings("ignore:`verify=<str>` is deprecated:DeprecationWarning"),
]


@dataclass(frozen=True)
class SdkServer:
    server: LiveServer
    certificates: Certificates
    token: str
    other_token: str

    def pytfe(self, token: str | None = None) -> TFEClient:
        return TFEClient(
            TFEConfig(
                address=self.server.url, token=token or self.token, ca_bundle=str(self.certificates.ca), max_retries=0
            )
        )

    def terrasnek(self, token: str | None = None) -> TFC:
        api = TFC(token or self.token, url=self.server.url, verify=str(self.certificates.ca), skip_version_check=True)
        api.set_org("acme")
        return api


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def sdk_server(tmp_path_factory: pytest.TempPathFactory, certificates: Certificates) -> Iterator[SdkServer]:
    server = start_server(
        tmp_path_factory.mktemp("sdk"), workers=2, extra_env=tls_environment(certificates), scheme="https"
    )
    try:
        yield SdkServer(
            server, certificates, server.create_token("acme", "alice"), server.create_token("other", "mallory")
        )
    finally:
        server.stop()


def state(serial: int, lineage: str = "sdk-lineage", **outputs: object) -> bytes:
    document = {
        "version": 4,
        "terraform_version": "1.0.3",
        "serial": serial,
        "lineage": lineage,
        "resources": [],
        "outputs": {
            k: {"value": v, "type": "string", **({"sensitive": True} if k.startswith("secret") else {})}
            for k, v in outputs.items()
        },
    }
    return json.dumps(document).encode()


def create_options(body: bytes, **extra: object) -> StateVersionCreateOptions:
    document = json.loads(body)
    return StateVersionCreateOptions(
        serial=document["serial"], md5=hashlib.md5(body).hexdigest(), lineage=document["lineage"], **extra
    )


def test_pytfe_organizations_and_workspaces(sdk_server: SdkServer) -> None:
    with sdk_server.pytfe() as tfe:
        assert tfe.users.read_current().username == "alice"
        assert [org.name for org in tfe.organizations.list()] == ["acme"]
        assert tfe.organizations.read("acme").id == "acme"
        entitlements = tfe.organizations.read_entitlements("acme")
        assert entitlements.state_storage is True and entitlements.operations is False
        created = tfe.workspaces.create("acme", WorkspaceCreateOptions(name="pytfe-ws", auto_apply=True))
        assert created.id.startswith("ws-") and created.permissions.can_lock is True
        assert tfe.workspaces.read("pytfe-ws", organization="acme").id == created.id
        assert tfe.workspaces.read_by_id(created.id).name == "pytfe-ws"
        for name in ("pytfe-a", "pytfe-b"):
            tfe.workspaces.create("acme", WorkspaceCreateOptions(name=name))
        listed = [w.name for w in tfe.workspaces.list("acme", WorkspaceListOptions(search="pytfe-"))]
        assert listed == ["pytfe-a", "pytfe-b", "pytfe-ws"]
        updated = tfe.workspaces.update(
            "pytfe-ws", WorkspaceUpdateOptions(working_directory="infra"), organization="acme"
        )
        assert updated.working_directory == "infra"
        tfe.workspaces.delete("pytfe-b", organization="acme")
        with pytest.raises(NotFound):
            tfe.workspaces.read("pytfe-b", organization="acme")


def test_pytfe_locks_state_versions_outputs_and_rollback(sdk_server: SdkServer) -> None:
    with sdk_server.pytfe() as tfe:
        workspace = tfe.workspaces.create("acme", WorkspaceCreateOptions(name="pytfe-state"))
        locked = tfe.workspaces.lock(workspace.id, WorkspaceLockOptions(reason="pytfe"))
        assert locked.locked is True and locked.locked_by.user
        with pytest.raises(TFEError) as conflict:
            tfe.workspaces.lock(workspace.id, WorkspaceLockOptions(reason="again"))
        assert conflict.value.status == 409
        first = state(1, greeting="inline", secret_key="hunter2")
        inline = tfe.state_versions.create(workspace.id, create_options(first, state=base64.b64encode(first).decode()))
        assert inline.status.value == "finalized" and inline.serial == 1
        second = state(2, greeting="uploaded")
        uploaded = tfe.state_versions.upload(
            workspace.id, raw_state=second, raw_json_state=b'{"format_version":"1"}', options=create_options(second)
        )
        assert uploaded.status.value == "finalized" and uploaded.serial == 2
        assert tfe.state_versions.read_current(workspace.id).id == uploaded.id
        assert tfe.state_versions.download(inline.id) == first
        assert tfe.state_versions.download_current(workspace.id) == second
        history = list(tfe.state_versions.list(StateVersionListOptions(organization="acme", workspace="pytfe-state")))
        assert [v.serial for v in history] == [2, 1]
        outputs = {o.name: o for o in tfe.state_versions.list_outputs(inline.id)}
        assert outputs["greeting"].value == "inline" and outputs["secret_key"].value is None
        assert tfe.state_version_outputs.read(outputs["secret_key"].id).value == "hunter2"
        current = {o.name: o.value for o in tfe.state_version_outputs.read_current(workspace.id)}
        assert current == {"greeting": "uploaded"}
        rolled = tfe.state_versions.rollback(workspace.id, inline.id)
        assert rolled.serial == 3
        assert json.loads(tfe.state_versions.download_current(workspace.id))["outputs"]["greeting"]["value"] == "inline"
        assert tfe.workspaces.unlock(workspace.id).locked is False
        tfe.workspaces.lock(workspace.id, WorkspaceLockOptions(reason="left behind"))
        assert tfe.workspaces.force_unlock(workspace.id).locked is False


def test_pytfe_refuses_bad_tokens_and_other_organizations(sdk_server: SdkServer) -> None:
    with sdk_server.pytfe("stm_wrong") as stranger, pytest.raises(AuthError) as denied:
        stranger.users.read_current()
    assert denied.value.status == 401
    with sdk_server.pytfe() as alice, sdk_server.pytfe(sdk_server.other_token) as mallory:
        theirs = mallory.workspaces.create("other", WorkspaceCreateOptions(name="secret-ws"))
        with pytest.raises(NotFound):
            alice.workspaces.read_by_id(theirs.id)
        with pytest.raises(NotFound):
            alice.workspaces.read("secret-ws", organization="other")
        with pytest.raises(NotFound):
            alice.state_versions.read_current(theirs.id)


def test_pytfe_organization_lifecycle_as_site_admin(tmp_path: Path, certificates: Certificates) -> None:
    server = start_server(
        tmp_path / "admin",
        workers=1,
        scheme="https",
        extra_env={**tls_environment(certificates), "OPENTACO_AUTH_DISABLE": "true"},
    )
    try:
        with TFEClient(
            TFEConfig(address=server.url, token="unused", ca_bundle=str(certificates.ca), max_retries=0)
        ) as tfe:
            created = tfe.organizations.create(OrganizationCreateOptions(name="neworg", email="ops@example.com"))
            assert created.name == "neworg"
            assert tfe.organizations.update("neworg", OrganizationUpdateOptions(name="renamed")).name == "renamed"
            assert "renamed" in [org.name for org in tfe.organizations.list()]
            tfe.organizations.delete("renamed")
            with pytest.raises(NotFound):
                tfe.organizations.read("renamed")
    finally:
        server.stop()


def test_terrasnek(sdk_server: SdkServer) -> None:
    api = sdk_server.terrasnek()
    assert api.orgs.show("acme")["data"]["attributes"]["name"] == "acme"
    assert api.account.show()["data"]["type"] == "users"
    created = api.workspaces.create({"data": {"type": "workspaces", "attributes": {"name": "snek"}}})["data"]
    assert api.workspaces.show(workspace_name="snek")["data"]["id"] == created["id"]
    assert api.workspaces.show(workspace_id=created["id"])["data"]["attributes"]["name"] == "snek"
    names = [w["attributes"]["name"] for w in api.workspaces.list_all(search={"name": "snek"})["data"]]
    assert names == ["snek"]
    api.workspaces.update({"data": {"attributes": {"auto-apply": True}}}, workspace_name="snek")
    assert api.workspaces.show(workspace_id=created["id"])["data"]["attributes"]["auto-apply"] is True
    assert api.workspaces.lock(created["id"], {"reason": "terrasnek"})["data"]["attributes"]["locked"] is True
    with pytest.raises(TFCHTTPConflict):
        api.workspaces.lock(created["id"], {"reason": "again"})
    body = state(1, snek="hiss")
    version = api.state_versions.create(
        created["id"],
        {
            "data": {
                "type": "state-versions",
                "attributes": {
                    "serial": 1,
                    "md5": hashlib.md5(body).hexdigest(),
                    "lineage": "sdk-lineage",
                    "state": base64.b64encode(body).decode(),
                },
            }
        },
    )["data"]
    body2 = state(2, snek="rattle")
    api.state_versions.create(
        created["id"],
        {
            "data": {
                "type": "state-versions",
                "attributes": {
                    "serial": 2,
                    "md5": hashlib.md5(body2).hexdigest(),
                    "lineage": "sdk-lineage",
                    "state": base64.b64encode(body2).decode(),
                },
            }
        },
    )
    assert api.state_versions.get_current(created["id"])["data"]["attributes"]["serial"] == 2
    listed = api.state_versions.list(
        filters=[{"keys": ["workspace", "name"], "value": "snek"}, {"keys": ["organization", "name"], "value": "acme"}]
    )
    assert [v["attributes"]["serial"] for v in listed["data"]] == [2, 1]
    url = api.state_versions.show(version["id"])["data"]["attributes"]["hosted-state-download-url"]
    assert api.state_versions._get(url, return_raw=True) == body  # terrasnek has no download helper for state versions
    outputs = api.state_version_outputs.list(version["id"])["data"]
    assert outputs[0]["attributes"]["value"] == "hiss"
    shown = api.state_version_outputs.show(outputs[0]["id"])["data"]
    assert shown["attributes"]["name"] == "snek"
    current = api.state_version_outputs.show_current_for_workspace(created["id"])["data"]
    assert current[0]["attributes"]["value"] == "rattle"
    rolled = api.state_versions.rollback(
        created["id"],
        {
            "data": {
                "type": "state-versions",
                "relationships": {"rollback-state-version": {"data": {"type": "state-versions", "id": version["id"]}}},
            }
        },
    )
    assert rolled["data"]["attributes"]["serial"] == 3
    assert api.workspaces.unlock(created["id"])["data"]["attributes"]["locked"] is False
    api.workspaces.lock(created["id"], {"reason": "stuck"})
    assert api.workspaces.force_unlock(created["id"])["data"]["attributes"]["locked"] is False
    api.workspaces.destroy(workspace_name="snek")
    with pytest.raises(TFCHTTPNotFound):
        api.workspaces.show(workspace_name="snek")


def test_terrasnek_bad_token_and_other_org(sdk_server: SdkServer) -> None:
    with pytest.raises(TFCHTTPUnauthorized):
        sdk_server.terrasnek("stm_wrong").account.show()
    mallory = sdk_server.terrasnek(sdk_server.other_token)
    mallory.set_org("other")
    theirs = mallory.workspaces.create({"data": {"type": "workspaces", "attributes": {"name": "hidden"}}})["data"]
    with pytest.raises(TFCHTTPNotFound):
        sdk_server.terrasnek().workspaces.show(workspace_id=theirs["id"])
