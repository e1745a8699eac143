"""The Blueprint every API module uses: flask-smorest's, with a JSON parser that refuses what it
cannot read (a 4xx, never a 500 and never a body silently ignored)."""

from __future__ import annotations

from typing import Any

import flask
import flask_smorest
from marshmallow import RAISE, Schema, ValidationError, fields
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import UnsupportedMediaType


class JsonParser(FlaskParser):
    # A query string is refused on unknown parameters like a body is on unknown fields: a
    # misspelled filter (`?stauts=paid`) would otherwise answer every order as if none was asked.
    DEFAULT_UNKNOWN_BY_LOCATION = {**FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, "query": RAISE, "querystring": RAISE}

    def load_querystring(self, req: flask.Request, schema: Schema) -> Any:
        # A parameter given twice where one value is expected: webargs would keep the first and
        # drop the rest (`?status=paid&status=cancelled` filtering on paid alone).
        repeated = sorted(
            name
            for name in req.args
            if len(req.args.getlist(name)) > 1 and not isinstance(schema.fields.get(name), fields.List)
        )
        if repeated:
            raise ValidationError({name: ["given more than once; send it once"] for name in repeated})
        return super().load_querystring(req, schema)

    def _raw_load_json(self, req: flask.Request) -> Any:
        # webargs treats a body of another content type as no body at all: a form-encoded PATCH
        # would answer 200 and change nothing.
        if not is_json_request(req) and req.get_data(cache=True):
            raise UnsupportedMediaType("send the body as JSON, with Content-Type: application/json")
        return super()._raw_load_json(req)

    def load_json(self, req: flask.Request, schema: Schema) -> Any:
        try:
            return super().load_json(req, schema)
        # Nested deeper than Python's json module can follow, or an integer literal longer than
        # it converts (a ValueError past 4300 digits): JSON this API cannot read, so a 400.
        except (RecursionError, ValueError) as exc:
            return self._handle_invalid_json_error(exc, req)


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = JsonParser()

    def arguments(self, schema: type[Schema] | Schema, *args: Any, **kwargs: Any) -> Any:
        # One schema instance per route, made here: given a class, webargs makes a new instance
        # (and deep-copies every declared field, nested schemas included) on every request.
        # Loading does not change a schema instance, so the routes' threads can share it.
        return super().arguments(schema() if isinstance(schema, type) else schema, *args, **kwargs)
