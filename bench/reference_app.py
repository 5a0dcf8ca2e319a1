"""The do-nothing Flask handler of spec/performance.md: the floor that Flask plus gunicorn costs on this machine.

Started by ``bench.servers.reference_app`` as ``gunicorn 'bench.reference_app:create_app()'``. Each route does what
one of our benchmarked requests does on the wire and nothing real (no authentication, database, hashing or
decryption):

- ``GET /static/<name>``: the bytes of file ``<name>`` of ``BENCH_STATIC_DIR``, from memory (a state GET);
- ``GET /json/<name>``: file ``<name>`` parsed once and encoded again by Flask's JSON provider on every request (a
  TFC API document, such as a workspace);
- ``POST``/``PUT /sink/<anything>``: reads the whole body, answers 200 (a state write, an upload);
- ``LOCK``/``UNLOCK /lock/<anything>``: reads the small body, answers 200 (the http backend's locking).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from flask import Flask, Response, abort, request

READ_CHUNK = 64 * 1024


def create_app() -> Flask:
    """The app; the files are read once here, in the gunicorn worker (or master with preload)."""
    directory = Path(os.environ["BENCH_STATIC_DIR"])
    files = {path.name: path.read_bytes() for path in directory.iterdir() if path.is_file()}
    documents: dict[str, Any] = {}
    app = Flask(__name__)

    @app.get("/static/<name>")
    def static_bytes(name: str) -> Response:
        data = files.get(name)
        if data is None:
            abort(404)
        return Response(data, mimetype="application/json")

    @app.get("/json/<name>")
    def json_document(name: str) -> Response:
        if name not in files:
            abort(404)
        if name not in documents:
            documents[name] = json.loads(files[name])
        # compact, as Flask's own jsonify outside debug mode
        body = app.json.dumps(documents[name], separators=(",", ":"))
        return Response(body, mimetype="application/vnd.api+json")

    @app.route("/sink/<path:_name>", methods=["POST", "PUT"])
    def sink(_name: str) -> Response:
        # read in chunks, as a streaming handler would, and keep nothing
        while request.stream.read(READ_CHUNK):
            pass
        return Response(status=200)

    @app.route("/lock/<path:_name>", methods=["LOCK", "UNLOCK"])
    def lock(_name: str) -> Response:
        request.get_data()
        return Response(status=200)

    return app
