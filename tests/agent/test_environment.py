"""Terraform's environment is built from a short list, never inherited: no token or cloud credential of the
agent's own reaches a run."""

from __future__ import annotations

from pathlib import Path

from app.agent.environment import job_environment

AGENT_ENV = {
    "PATH": "/opt/bin:/usr/bin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "TZ": "UTC",
    "TF_CLI_CONFIG_FILE": "/etc/terraform.rc",
    "TF_PLUGIN_CACHE_DIR": "/var/cache/tf",
    "HTTPS_PROXY": "http://proxy:3128",
    "HOME": "/home/agent",
    "STATESMAN_AGENT_TOKEN": "stm_secret",
    "OPENTACO_SECRET_KEY": "k",
    "AWS_ACCESS_KEY_ID": "AKIA",
    "AWS_SECRET_ACCESS_KEY": "secret",
    "GOOGLE_APPLICATION_CREDENTIALS": "/home/agent/gcp.json",
    "SSH_AUTH_SOCK": "/tmp/ssh",
    "TF_LOG": "trace",
}


def test_only_the_listed_settings_pass_and_home_is_the_job_s() -> None:
    env = job_environment(AGENT_ENV, Path("/jobs/j1/home"), [])
    assert env == {
        "PATH": "/opt/bin:/usr/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
        "TF_CLI_CONFIG_FILE": "/etc/terraform.rc",
        "TF_PLUGIN_CACHE_DIR": "/var/cache/tf",
        "HTTPS_PROXY": "http://proxy:3128",
        "HOME": "/jobs/j1/home",
        "TF_IN_AUTOMATION": "1",
        "TF_INPUT": "0",
    }


def test_the_workspace_s_env_variables_are_added_and_may_override() -> None:
    env = job_environment(AGENT_ENV, Path("/h"), [("AWS_REGION", "eu-west-1"), ("TF_LOG", "debug"), ("LANG", "de")])
    assert env["AWS_REGION"] == "eu-west-1" and env["TF_LOG"] == "debug" and env["LANG"] == "de"
    assert "AWS_SECRET_ACCESS_KEY" not in env


def test_a_workspace_cannot_select_another_terraform_workspace() -> None:
    assert "TF_WORKSPACE" not in job_environment({}, Path("/h"), [("TF_WORKSPACE", "other")])


def test_a_minimal_path_when_the_agent_has_none() -> None:
    assert job_environment({}, Path("/h"), [])["PATH"] == "/usr/local/bin:/usr/bin:/bin"
