"""``statesman``: check the configuration and the schema, then serve with gunicorn; ``statesman agent`` runs an agent.

Flags follow the old servers' single-dash style (``-port 8080 -storage fs -auth-disable``) and are applied as
the environment variables they stand for, so gunicorn's workers read exactly the same ``Config``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import config as config_package
from config import STORAGE_BACKENDS, Config, ConfigError, load_config

# Next to the config package wherever it is installed, not relative to a checkout.
GUNICORN_CONF = Path(config_package.__file__).resolve().with_name("gunicorn.conf.py")

FLAG_VARIABLES = {
    "port": "OPENTACO_PORT",
    "listen": "LISTEN_ADDR",
    "storage": "OPENTACO_STORAGE",
    "s3_bucket": "OPENTACO_S3_BUCKET",
    "s3_prefix": "OPENTACO_S3_PREFIX",
    "s3_region": "OPENTACO_S3_REGION",
    "workers": "WEB_CONCURRENCY",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line; every flag also has an environment variable (see the README)."""
    parser = argparse.ArgumentParser(
        prog="statesman",
        description="Terraform/OpenTofu state server",
        epilog="`statesman agent --url URL` runs an agent that executes remote runs instead (see --help there).",
    )
    parser.add_argument("-port", "--port", type=int, help="listen port (OPENTACO_PORT, default 8080)")
    parser.add_argument("-listen", "--listen", help="listen address host:port (LISTEN_ADDR)")
    parser.add_argument("-storage", "--storage", choices=STORAGE_BACKENDS, help="storage driver (OPENTACO_STORAGE)")
    parser.add_argument("-s3-bucket", "--s3-bucket", dest="s3_bucket", help="S3 bucket (OPENTACO_S3_BUCKET)")
    parser.add_argument("-s3-prefix", "--s3-prefix", dest="s3_prefix", help="S3 key prefix (OPENTACO_S3_PREFIX)")
    parser.add_argument("-s3-region", "--s3-region", dest="s3_region", help="S3 region (OPENTACO_S3_REGION)")
    parser.add_argument("-workers", "--workers", type=int, help="gunicorn worker processes (WEB_CONCURRENCY)")
    parser.add_argument(
        "-auth-disable",
        "--auth-disable",
        dest="auth_disable",
        action="store_true",
        help="development only: no authentication, every request acts as an admin",
    )
    parser.add_argument(
        "-agent",
        "--agent",
        action="store_true",
        help=f"development: also run one agent for organization {EXAMPLE_ORG!r} (remote runs with no extra step)",
    )
    parser.add_argument(
        "-dev",
        "--dev",
        action="store_true",
        help="development mode: generated keys under ./data (STATESMAN_ENV=development)",
    )
    return parser.parse_args(argv)


def apply_flags(args: argparse.Namespace, environ: dict[str, str]) -> None:
    """Write the given flags into ``environ`` as their variables."""
    for flag, variable in FLAG_VARIABLES.items():
        value = getattr(args, flag)
        if value is not None:
            environ[variable] = str(value)
    if args.auth_disable:
        environ["OPENTACO_AUTH_DISABLE"] = "true"
    if args.dev:
        environ["STATESMAN_ENV"] = "development"


def preflight(example_org: str | None = None) -> None:
    """Fail before forking workers: invalid configuration, missing schema, unusable drivers.

    With ``example_org`` (development mode without authentication) that organization is created when missing: the
    http backend creates organizations on first use there, but the cloud block reads its organization first.
    """
    from app import create_app
    from app.cli.preflight import require_current_schema, require_reachable_backends
    from app.extensions import db, drivers
    from app.repositories.orgs import create_org, get_org_by_name

    app = create_app(load_config())
    require_current_schema(app)
    require_reachable_backends(app)
    with app.app_context():
        if example_org is not None and get_org_by_name(example_org) is None:
            create_org(example_org, created_by="statesman-dev")
        db.engine.dispose()
        drivers().close()


def use_ephemeral_metadata(environ: dict[str, str]) -> Path:
    """A throwaway SQLite metadata database for memory storage, migrated now; returns its directory.

    The states in memory die with the process, so metadata kept on disk would name versions that no longer exist.
    """
    from flask_migrate import upgrade

    from app import create_app
    from app.repositories.migration_status import MIGRATIONS_DIR

    directory = Path(tempfile.mkdtemp(prefix="statesman-memory-"))
    environ["DATABASE_URL"] = f"sqlite:///{directory / 'metadata.db'}"
    app = create_app(load_config())
    with app.app_context():
        upgrade(directory=str(MIGRATIONS_DIR))
    return directory


def development_https(config: Config, environ: dict[str, str]) -> dict[str, str] | None:
    """The environment of development mode's HTTPS server, after printing how to use it; None when it is off."""
    if not config.development or config.dev_https_port is None or config.tls_cert:
        return None
    if config.storage_backend == "memory" or config.lock_backend == "memory":
        print("statesman: no development HTTPS port: the memory drivers live in one process", file=sys.stderr)
        return None
    from config.dev_tls import ensure_development_certificates

    certificates = ensure_development_certificates(config.data_dir)
    host = f"[{config.listen_host}]" if ":" in config.listen_host else config.listen_host
    hostname = f"localhost:{config.dev_https_port}"
    # The HTTPS server is a gunicorn master of its own, with its own metrics directory: two masters would each
    # empty a shared one when they start.
    https = {k: v for k, v in environ.items() if k not in ("OPENTACO_PORT", "PROMETHEUS_MULTIPROC_DIR")}
    https.update(
        {
            "LISTEN_ADDR": f"{host}:{config.dev_https_port}",
            "TLS_CERT": str(certificates.cert),
            "TLS_KEY": str(certificates.key),
        }
    )
    token, why = ("dev", "any value while authentication is disabled")
    if not config.auth_disabled:
        token, why = ("stm_...", "a token from `flask tokens create`")
    print(
        f"statesman: development HTTPS on https://{hostname} (certificate from the development CA "
        f"{certificates.ca}).\n"
        "For the cloud block (Terraform >= 1.1), trust the CA and give Terraform a token for the host:\n"
        f"  export SSL_CERT_FILE={certificates.ca}\n"
        f'  # ~/.terraformrc ({why}):\n  credentials "{hostname}" {{\n    token = "{token}"\n  }}\n'
        f'  # main.tf:\n  terraform {{\n    cloud {{\n      hostname     = "{hostname}"\n'
        f'      organization = "{EXAMPLE_ORG}"\n      workspaces {{\n        name = "prod"\n      }}\n    }}\n  }}',
        file=sys.stderr,
        flush=True,
    )
    return https


# The organization the start-up message's cloud block names.
EXAMPLE_ORG = "acme"
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def supervise(
    environments: list[dict[str, str]],
    cleanup: Callable[[], None] | None = None,
    helpers: list[tuple[list[str], dict[str, str]]] | None = None,
) -> int:
    """Run one gunicorn per environment (and each helper command, the development agent); signals go to all of
    them, and when one ends the others are stopped.

    gunicorn applies its TLS settings to every bind of a server, so plain HTTP and HTTPS need one master each.
    """
    command = [sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONF), "wsgi:app"]
    children = [subprocess.Popen(command, env=env) for env in environments]
    children += [subprocess.Popen(helper, env=env) for helper, env in helpers or []]

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    for signum in FORWARDED_SIGNALS:
        signal.signal(signum, forward)
    try:
        pid, status = os.wait()
        code = os.waitstatus_to_exitcode(status)
        for child in children:
            if child.pid != pid and child.poll() is None:
                child.terminate()
        for child in children:
            if child.pid == pid:
                continue
            try:
                child.wait(timeout=60)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        return code
    finally:
        if cleanup is not None:
            cleanup()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``statesman`` console script."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["agent"]:
        # The agent is a client of a server elsewhere: it reads none of the server's settings.
        from app.agent.cli import main as agent_main

        return agent_main(argv[1:])
    args = parse_args(argv)
    environ: dict[str, str] = os.environ  # type: ignore[assignment]
    apply_flags(args, environ)
    scratch: Path | None = None
    try:
        config = load_config()
        if config.ephemeral_metadata:
            scratch = use_ephemeral_metadata(environ)
            print(
                f"statesman: memory storage: metadata in a throwaway database under {scratch} (removed on exit)",
                file=sys.stderr,
            )
            config = load_config()
        preflight(EXAMPLE_ORG if config.development and config.auth_disabled else None)
    except ConfigError as exc:
        sys.exit(f"statesman: configuration error: {exc}")
    scheme = "https" if config.tls_cert else "http"
    print(
        f"statesman: serving on {scheme}://{config.listen_host}:{config.port} with "
        f"{config.web_concurrency} worker(s); storage={config.storage_backend} locks={config.lock_backend} "
        f"kms={config.kms_backend}",
        file=sys.stderr,
        flush=True,
    )
    if config.tls_cert:
        print(
            "statesman: WARNING: gunicorn serves HTTPS directly; slow clients can hold all of its threads. "
            "Do not expose direct serving to untrusted networks: put nginx in front (config/nginx.conf).",
            file=sys.stderr,
            flush=True,
        )
    https = development_https(config, environ)
    agents = _development_agents(args, config)
    if https is None and scratch is None and not agents:
        os.execvp(sys.executable, [sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONF), "wsgi:app"])
    cleanup = (lambda: shutil.rmtree(scratch, ignore_errors=True)) if scratch is not None else None
    sys.exit(supervise([dict(environ)] + ([https] if https else []), cleanup, agents))


def _development_agents(args: argparse.Namespace, config: Config) -> list[tuple[list[str], dict[str, str]]]:
    """With ``-agent``: the agent to run beside the server (runs must be enabled for it to get work)."""
    if not args.agent:
        return []
    if not config.runs_enabled:
        sys.exit("statesman: -agent needs remote runs enabled (RUNS_ENABLED=true)")
    from app.cli.dev_agent import development_agent

    command, environment = development_agent(config, EXAMPLE_ORG)
    print(f"statesman: agent for organization {EXAMPLE_ORG!r} started beside the server", file=sys.stderr)
    return [(command, environment)]


if __name__ == "__main__":
    main()
