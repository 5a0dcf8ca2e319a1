"""Configuration versions: create, the signed upload of a ``.tar.gz``, safety checks, polling, permissions."""

from __future__ import annotations

import hashlib
import io
import tarfile
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from flask.testing import FlaskClient

from app.extensions import db, drivers
from app.models import ConfigurationVersion
from app.repositories.configuration_versions import open_archive
from tests.factories import make_token
from tests.tfc_api.conftest import Api, assert_error


def tarball(**files: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name.replace("__", "/"))
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def create(api: Api, workspace: dict[str, Any], **attributes: Any) -> dict[str, Any]:
    response = api.post(
        f"workspaces/{workspace['id']}/configuration-versions",
        {"data": {"type": "configuration-versions", "attributes": attributes}},
    )
    assert response.status_code == 201, response.json
    data: dict[str, Any] = response.json["data"]
    return data


def upload(client: FlaskClient, url: str, body: bytes) -> Any:
    parts = urlsplit(url)
    return client.put(f"{parts.path}?{parts.query}", data=body, headers={"Content-Type": "application/octet-stream"})


def test_upload_then_poll_until_uploaded(app: Flask, client: FlaskClient, api: Api, workspace: dict[str, Any]) -> None:
    version = create(api, workspace, **{"auto-queue-runs": False, "speculative": True})
    attributes = version["attributes"]
    assert version["id"].startswith("cv-") and attributes["status"] == "pending"
    assert attributes["speculative"] is True and attributes["auto-queue-runs"] is False
    assert attributes["upload-url"].startswith("http://localhost/api/v2/configuration-versions/")
    body = tarball(**{"main.tf": b'output "marker" { value = "cv-marker" }\n', "modules__a__main.tf": b"# a\n"})
    assert upload(client, attributes["upload-url"], body).status_code == 200
    shown = api.get(f"configuration-versions/{version['id']}").json["data"]
    assert shown["attributes"]["status"] == "uploaded" and "upload-url" not in shown["attributes"]
    assert "uploaded-at" in shown["attributes"]["status-timestamps"]
    assert upload(client, attributes["upload-url"], body).status_code == 200  # a retry of the same bytes
    assert_error(upload(client, attributes["upload-url"], tarball(**{"other.tf": b""})), 409, "already has")
    with app.app_context():
        stored = db.session.get(ConfigurationVersion, version["id"])
        assert b"".join(open_archive(stored)) == body
        sealed = b"".join(drivers().storage.open(stored.storage_key))
        assert sealed != body and b"cv-marker" not in sealed
    listed = api.get(f"workspaces/{workspace['id']}/configuration-versions").json
    assert [v["id"] for v in listed["data"]] == [version["id"]]


def test_a_hostile_archive_is_refused_and_the_version_says_why(
    client: FlaskClient, api: Api, workspace: dict[str, Any]
) -> None:
    version = create(api, workspace)
    refused = upload(client, version["attributes"]["upload-url"], tarball(**{"..__escape.tf": b"x"}))
    assert_error(refused, 400, "outside the archive")
    shown = api.get(f"configuration-versions/{version['id']}").json["data"]["attributes"]
    assert shown["status"] == "errored" and "outside the archive" in shown["error-message"]
    not_a_tarball = create(api, workspace)
    assert_error(upload(client, not_a_tarball["attributes"]["upload-url"], b"plain text"), 400, "not a readable")
    assert_error(upload(client, create(api, workspace)["attributes"]["upload-url"], b""), 400, "empty")


def test_the_upload_url_is_the_only_grant(client: FlaskClient, api: Api, workspace: dict[str, Any]) -> None:
    version = create(api, workspace)
    url = version["attributes"]["upload-url"]
    assert_error(upload(client, url.replace("signature=", "signature=0"), tarball(a=b"")), 403)
    other = create(api, workspace)
    swapped = url.replace(version["id"], other["id"])  # a signature is for one version only
    assert_error(upload(client, swapped, tarball(a=b"")), 403)


def test_permissions(app: Flask, client: FlaskClient, api: Api, workspace: dict[str, Any]) -> None:
    version = create(api, workspace)
    reader = Api(client, make_token(app, subject="rhea", role="default"))
    polled = reader.get(f"configuration-versions/{version['id']}")
    assert polled.status_code == 200 and "upload-url" not in polled.json["data"]["attributes"]  # a write grant
    assert "upload-url" in api.get(f"configuration-versions/{version['id']}").json["data"]["attributes"]
    assert_error(reader.post(f"workspaces/{workspace['id']}/configuration-versions", {"data": {}}), 403)
    outputs_only = Api(client, make_token(app, subject="otto", scope="outputs-only"))
    assert_error(outputs_only.get(f"configuration-versions/{version['id']}"), 403)
    stranger = Api(client, make_token(app, org="globex", subject="sam"))
    assert_error(stranger.get(f"configuration-versions/{version['id']}"), 404)
    assert_error(stranger.get(f"workspaces/{workspace['id']}/configuration-versions"), 404)


def test_archives_are_kept_by_gc_rotated_with_the_key_and_deleted_with_the_workspace(
    make_app: Any, app: Flask, client: FlaskClient, api: Api, workspace: dict[str, Any]
) -> None:
    import os
    from datetime import timedelta

    from app.repositories.storage_gc import find_garbage

    version = create(api, workspace)
    body = tarball(**{"main.tf": b"# kept\n"})
    assert upload(client, version["attributes"]["upload-url"], body).status_code == 200
    with app.app_context():
        stored = db.session.get(ConfigurationVersion, version["id"])
        key = stored.storage_key
        garbage = find_garbage(timedelta(seconds=-3600))  # everything counts as old: only references protect
        assert key not in {item.key for item in garbage.objects}
        config = app.extensions["statesman"].config
    rotated = make_app(kms_key=os.urandom(32), kms_old_keys=(config.kms_key,))
    result = rotated.test_cli_runner().invoke(args=["kms", "rotate"])
    assert result.exit_code == 0 and "1 configuration archive(s)" in result.output, result.output
    with rotated.app_context():
        moved = db.session.get(ConfigurationVersion, version["id"])
        assert moved.storage_key != key and b"".join(open_archive(moved)) == body
        new_key = moved.storage_key
        assert key not in set(item.key for item in drivers().storage.list_keys())
    only_new = Api(rotated.test_client(), api.token)
    assert only_new.delete(f"workspaces/{workspace['id']}").status_code == 204
    with rotated.app_context():
        assert new_key not in {item.key for item in drivers().storage.list_keys()}


def test_an_oversized_or_empty_upload_leaves_the_version_errored(
    make_app: Any, client: FlaskClient, api: Api, workspace: dict[str, Any]
) -> None:
    small = make_app(max_state_size=1000)
    tiny = Api(small.test_client(), api.token)
    version = create(tiny, workspace)
    assert_error(upload(small.test_client(), version["attributes"]["upload-url"], b"\0" * 5000), 413)
    shown = tiny.get(f"configuration-versions/{version['id']}").json["data"]["attributes"]
    assert shown["status"] == "errored" and "larger than" in shown["error-message"]


def test_racing_uploads_of_different_archives_leave_one(
    app: Flask, client: FlaskClient, api: Api, workspace: dict[str, Any]
) -> None:
    import threading

    version = create(api, workspace)
    url = version["attributes"]["upload-url"]
    bodies = [tarball(**{f"main{i}.tf": b"# %d\n" % i}) for i in range(4)]
    answers: list[int] = []
    start = threading.Barrier(len(bodies))

    def send(body: bytes) -> None:
        start.wait()
        answers.append(upload(app.test_client(), url, body).status_code)

    threads = [threading.Thread(target=send, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers).count(200) == 1 and all(code in (200, 409) for code in answers), answers
    with app.app_context():
        stored = db.session.get(ConfigurationVersion, version["id"])
        kept = b"".join(open_archive(stored))
        assert kept in bodies and hashlib.sha256(kept).hexdigest() == stored.sha256
        keys = {item.key for item in drivers().storage.list_keys() if "/configuration/" in item.key}
        assert keys == {stored.storage_key}  # the losers' objects are gone
