"""The public address of this server, for every absolute URL an API hands out."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import request

from app.extensions import config


def site_url() -> str:
    """``OPENTACO_PUBLIC_BASE_URL`` when set, else the scheme and host the request used."""
    return config().public_base_url or request.host_url.rstrip("/")


def site_path_prefix() -> str:
    """The path part of ``OPENTACO_PUBLIC_BASE_URL`` (``/statesman``), or empty."""
    return urlsplit(config().public_base_url or "").path.rstrip("/")
