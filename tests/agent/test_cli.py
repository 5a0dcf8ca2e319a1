"""``statesman agent``: a subcommand of ``statesman`` that leaves the server's own flags alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.agent import cli
from app.cli import server


def test_the_server_flags_still_parse() -> None:
    args = server.parse_args(["-listen", "127.0.0.1:8080", "-auth-disable"])
    assert args.listen == "127.0.0.1:8080" and args.auth_disable


def test_statesman_agent_is_the_agent_s_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ended:
        server.main(["agent", "--help"])
    assert ended.value.code == 0
    shown = capsys.readouterr().out
    assert "statesman agent" in shown and "--terraform-versions-dir" in shown and "STATESMAN_AGENT_TOKEN" in shown


def test_the_agent_s_options() -> None:
    args = cli.parse_args(["--url", "http://s:8080", "--name", "n1", "--once", "--poll-interval", "2"])
    assert args.url == "http://s:8080" and args.name == "n1" and args.once and args.poll_interval == 2.0
    assert cli.parse_args(["--url", "u"]).name.count("-") >= 1  # hostname-pid


def test_the_token_comes_from_the_environment_or_a_file(tmp_path: Path) -> None:
    assert cli.read_token(None, {"STATESMAN_AGENT_TOKEN": " stm_x \n"}) == "stm_x"
    token_file = tmp_path / "token"
    token_file.write_text("stm_from_file\n")
    assert cli.read_token(token_file, {"STATESMAN_AGENT_TOKEN": "other"}) == "stm_from_file"
    with pytest.raises(SystemExit, match="set STATESMAN_AGENT_TOKEN or pass --token-file"):
        cli.read_token(None, {})
    with pytest.raises(SystemExit, match="cannot read the token file"):
        cli.read_token(tmp_path / "missing", {})


def test_a_refused_token_ends_the_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    class RefusingClient:
        def claim(self, _name: str) -> None:
            raise cli.Refused(401, "invalid token")

    agent = cli.Agent(RefusingClient(), cli.AgentSettings(name="a1"), 0.1)  # type: ignore[arg-type]
    assert agent.serve() == 2
