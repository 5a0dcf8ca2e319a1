"""A workspace's tag keys, read without loading its tag collection, are the same keys the collection holds."""

from __future__ import annotations

import pytest
from flask import Flask

from app.extensions import db
from app.models import Workspace, WorkspaceTag
from app.repositories import orgs, workspaces
from app.repositories.tags import replace_tags, tag_keys


@pytest.fixture
def tagged(app: Flask) -> str:
    with app.app_context():
        org = orgs.create_org("acme")
        workspace = workspaces.create_workspace(org, "net", tags={"zone": "eu", "app": "", "Team": "core"})
        return workspace.id


def test_tag_keys_in_order_with_or_without_the_collection_loaded(app: Flask, tagged: str) -> None:
    with app.app_context():
        workspace = db.session.get(Workspace, tagged)
        assert "tags" in db.inspect(workspace).unloaded
        keys = tag_keys(workspace)
        assert "tags" in db.inspect(workspace).unloaded, "the keys were read without loading the collection"
        assert sorted(keys) == ["Team", "app", "zone"]
        assert keys == [tag.key for tag in workspace.tags]  # the database's order, as the collection's
        assert tag_keys(workspace) == keys


def test_tag_keys_see_changes_not_yet_committed(app: Flask, tagged: str) -> None:
    with app.app_context():
        workspace = db.session.get(Workspace, tagged)
        db.session.add(WorkspaceTag(workspace_id=tagged, key="added", value=""))
        assert sorted(tag_keys(workspace)) == ["Team", "added", "app", "zone"]
        db.session.rollback()
        replace_tags(workspace, {"only": ""})
        assert tag_keys(workspace) == ["only"]
        db.session.rollback()
        assert sorted(tag_keys(workspace)) == ["Team", "app", "zone"]
