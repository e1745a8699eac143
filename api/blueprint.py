"""The Blueprint every API module uses: flask-smorest's, with a JSON parser that refuses what it
cannot read (a 4xx, never a 500 and never a body silently ignored)."""

from __future__ import annotations

from typing import Any

import flask
import flask_smorest
from marshmallow import Schema
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import UnsupportedMediaType


class JsonParser(FlaskParser):
    def _raw_load_json(self, req: flask.Request) -> Any:
        # webargs treats a body of another content type as no body at all: a form-encoded PATCH
        # would answer 200 and change nothing.
        if not is_json_request(req) and req.get_data(cache=True):
            raise UnsupportedMediaType("send the body as JSON, with Content-Type: application/json")
        return super()._raw_load_json(req)

    def load_json(self, req: flask.Request, schema: Schema) -> Any:
        try:
            return super().load_json(req, schema)
        except RecursionError as exc:  # nested deeper than Python's json module can follow
            return self._handle_invalid_json_error(exc, req)


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = JsonParser()
