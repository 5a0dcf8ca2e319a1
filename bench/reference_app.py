"""The do-nothing Flask handler of spec/performance.md: the floor that Flask plus gunicorn costs on this machine.

Started by ``bench.servers.reference_app`` as ``gunicorn 'bench.reference_app:create_app()'``; it serves the files of
``BENCH_STATIC_DIR`` from memory at ``GET /static/<name>`` with no authentication, database or decryption.
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, Response, abort


def create_app() -> Flask:
    """The app; the files are read once here, in the gunicorn worker (or master with preload)."""
    directory = Path(os.environ["BENCH_STATIC_DIR"])
    files = {path.name: path.read_bytes() for path in directory.iterdir() if path.is_file()}
    app = Flask(__name__)

    @app.get("/static/<name>")
    def static_bytes(name: str) -> Response:
        data = files.get(name)
        if data is None:
            abort(404)
        return Response(data, mimetype="application/json")

    return app
