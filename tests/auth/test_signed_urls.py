"""Path tokens (log URLs): bound to method, resource and expiry, and never interchangeable with query signatures."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest
from flask import Flask

from app.auth.signed_urls import path_token, signed_query, verify_path_token, verify_signed_request
from app.core.errors import Forbidden


def test_a_path_token_grants_its_method_and_resource_until_it_expires(app: Flask) -> None:
    with app.app_context():
        token = path_token("GET", "plans/plan-1/logs", 60)
        verify_path_token("GET", "plans/plan-1/logs", token)
        verify_path_token("GET", "/plans/plan-1/logs/", token)  # the resource is compared without edge slashes
        for method, resource in (("PUT", "plans/plan-1/logs"), ("GET", "plans/plan-2/logs")):
            with pytest.raises(Forbidden, match="invalid URL token"):
                verify_path_token(method, resource, token)
        expiry, _, signature = token.partition(".")
        with pytest.raises(Forbidden, match="invalid URL token"):
            verify_path_token("GET", "plans/plan-1/logs", f"{int(expiry) + 1}.{signature}")
        with pytest.raises(Forbidden, match="expired"):
            verify_path_token("GET", "plans/plan-1/logs", path_token("GET", "plans/plan-1/logs", -1))
        for malformed in ("", "abc", "12", ".", f"x{token}", "9" * 13 + "." + signature):
            with pytest.raises(Forbidden):
                verify_path_token("GET", "plans/plan-1/logs", malformed)


def test_path_tokens_and_query_signatures_do_not_verify_as_each_other(app: Flask) -> None:
    with app.app_context():
        query = {key: values[0] for key, values in parse_qs(signed_query("GET", "plans/plan-1/logs", 60)).items()}
        with pytest.raises(Forbidden):
            verify_path_token("GET", "plans/plan-1/logs", f"{query['expires']}.{query['signature']}")
        expiry, _, signature = path_token("GET", "plans/plan-1/logs", 60).partition(".")
        with pytest.raises(Forbidden):
            verify_signed_request("GET", "plans/plan-1/logs", {"expires": expiry, "signature": signature})
