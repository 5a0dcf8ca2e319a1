"""``statesman -agent``: one agent beside a development server, so execution mode "remote" works with no extra step.

The agent holds an agent token of the example organization like any other agent and reaches the server over HTTP.
Its secret is kept in ``<data dir>/agent.token`` (mode 0600) and reused while it stays valid, so restarting
``make run`` does not pile up tokens.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from config import Config

TOKEN_FILE = "agent.token"


def development_agent(config: Config, org_name: str) -> tuple[list[str], dict[str, str]]:
    """The command and environment of the development agent (its token created or reused now)."""
    token_file = config.data_dir / TOKEN_FILE
    _ensure_token(token_file, org_name)
    host = "127.0.0.1" if config.listen_host in ("0.0.0.0", "", "::") else config.listen_host
    host = f"[{host}]" if ":" in host else host
    scheme = "https" if config.tls_cert else "http"
    command = [sys.executable, "-m", "app.cli.server", "agent", "--url", f"{scheme}://{host}:{config.port}"]
    command += ["--token-file", str(token_file), "--name", "dev-agent", "--work-dir", str(config.data_dir / "agent")]
    environment = {k: v for k, v in os.environ.items() if k != "STATESMAN_AGENT_TOKEN"}
    return command, environment


def _ensure_token(token_file: Path, org_name: str) -> None:
    from app import create_app
    from app.extensions import db, drivers
    from app.repositories import orgs, tokens

    app = create_app()
    with app.app_context():
        try:
            if token_file.exists():
                found = tokens.verify_token(token_file.read_text().strip())
                if found is not None and found.kind == "agent":
                    return
            org = orgs.get_org_by_name(org_name) or orgs.create_org(org_name, created_by="statesman-dev")
            _, secret = tokens.create_token(org, None, "statesman-dev", kind="agent", description="make run agent")
        finally:
            db.engine.dispose()
            drivers().close()
    token_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
