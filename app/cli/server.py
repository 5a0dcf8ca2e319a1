"""``statesman``: check the configuration and the schema, then serve with gunicorn.

Flags follow the old servers' single-dash style (``-port 8080 -storage fs -auth-disable``) and are applied as
the environment variables they stand for, so gunicorn's workers read exactly the same ``Config``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from config import STORAGE_BACKENDS, ConfigError, load_config

GUNICORN_CONF = Path(__file__).resolve().parents[2] / "config" / "gunicorn.conf.py"

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
    parser = argparse.ArgumentParser(prog="statesman", description="Terraform/OpenTofu state server")
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


def preflight() -> None:
    """Fail before forking workers: invalid configuration, missing schema, unusable drivers."""
    from app import create_app
    from app.cli.preflight import require_current_schema
    from app.extensions import db
    from app.runtime import drivers

    app = create_app(load_config())
    require_current_schema(app)
    with app.app_context():
        db.engine.dispose()
        drivers().close()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``statesman`` console script."""
    args = parse_args(argv)
    apply_flags(args, os.environ)  # type: ignore[arg-type]
    try:
        config = load_config()
        preflight()
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
    os.execvp(sys.executable, [sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONF), "wsgi:app"])


if __name__ == "__main__":
    main()
