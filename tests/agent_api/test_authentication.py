"""Only agent tokens reach the agent API: anything else is refused before a job is looked at."""

from __future__ import annotations

from flask import Flask

from app.repositories import orgs, tokens
from tests.agent_api.conftest import agent_token, assert_error, caller
from tests.factories import basic, make_token


def test_no_or_a_bad_token_is_401_with_the_bearer_challenge(runs_app: Flask) -> None:
    for token in (None, "stm_not-a-real-token"):
        response = caller(runs_app, token).claim()
        assert_error(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_revoked_agent_token_is_401(runs_app: Flask) -> None:
    secret = agent_token(runs_app)
    agent = caller(runs_app, secret)
    assert agent.claim().status_code == 204
    with runs_app.app_context():
        org = orgs.get_org("acme")
        assert org is not None
        (token,) = tokens.list_agent_tokens(org)
        tokens.revoke_token(token.id, "test")
    assert_error(agent.claim(), 401, "revoked")


def test_user_organization_and_service_tokens_are_403(runs_app: Flask) -> None:
    user = make_token(runs_app)
    with runs_app.app_context():
        org = orgs.get_org("acme")
        assert org is not None
        _, organization = tokens.regenerate_org_token(org, "test")
        _, service = tokens.create_token(org, None, "test")
    for secret in (user, organization, service):
        assert_error(caller(runs_app, secret).claim(), 403, "agent tokens only")


def test_basic_credentials_with_a_user_token_are_403_too(runs_app: Flask) -> None:
    response = runs_app.test_client().post(
        "/api/agent/v1/jobs/claim", json={"agent": "a"}, headers=basic(make_token(runs_app))
    )
    assert_error(response, 403, "agent tokens only")


def test_agent_tokens_still_authenticate_while_authentication_is_disabled(make_app) -> None:
    app = make_app(runs_enabled=True, auth_disabled=True)
    assert caller(app, agent_token(app)).claim().status_code == 204
    assert_error(caller(app, None).claim(), 401, "agent token")
    assert_error(caller(app, make_token(app)).claim(), 403, "agent tokens only")


def test_unknown_urls_and_wrong_methods_answer_in_the_api_s_shape(runs_app: Flask) -> None:
    agent = caller(runs_app, agent_token(runs_app))
    assert_error(agent.get("nothing-here"), 404)
    assert_error(agent.get("jobs/claim"), 405)


def test_the_request_log_names_the_agent_token(runs_app: Flask, caplog) -> None:
    # An idle claim is logged at DEBUG (app.web.request_log.idle_poll).
    with caplog.at_level("DEBUG", logger="statesman.request"):
        response = caller(runs_app, agent_token(runs_app)).claim()
        assert response.status_code == 204
        response.close()  # the request is logged once its response is closed
    assert any(
        "/api/agent/v1/jobs/claim 204" in r.getMessage() and "user=agent:at-" in r.getMessage() for r in caplog.records
    )
