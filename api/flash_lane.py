"""The flash lane: the common placement of a flash-sale stampede, answered in front of Flask.

In a stampede almost every request is the same kind: `POST /api/v1/flash-sales/{id}/orders` by a
member, with an Idempotency-Key and a "buy now" delivered to an address. On two CPUs shared with
PostgreSQL, what Flask's dispatch, flask-smorest's and webargs' wrappers and the response's
machinery cost per request is most of what a placement costs (BENCHMARKS.md, "Flash sale"). So
the lane, a WSGI layer around the app, answers that one request itself when, and only when, it is
exactly that case:

- the method, the path, no query string, a JSON body with a Content-Length, within the request
  limits (api.http_rules);
- a valid member token (api.auth), a well-formed Idempotency-Key;
- a body the placement's own schema (FlashOrderCreateSchema) loads, with no coupons or selections
  (what a body asks is kept per body and sale: a stampede's buyers send the same few bodies);
- an order the one-round-trip placement takes (`shop.offers.flash_sales.place_while_selling`),
  or one of a sale the sold-out gate knows is sold out (refused as the app refuses it).

It answers what the endpoint answers: 201 with the order as OrderSchema dumps it, the same headers;
a refusal (`sold_out`, from the gate or from PostgreSQL, `offer_limit_reached`) or any error through
the app's own error handlers and response hooks. Anything else it hands to the app unchanged (the
body it read put back), and the app answers it as always: a wrong token, a bad body, a retry, a
member with coupons, a sale not running.
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Callable, Iterable
from types import MappingProxyType
from typing import Any

from flask import Flask
from marshmallow import ValidationError

from api.auth import MEMBER, caller_of
from api.http_rules import oversized
from api.member_flash_sales import TRIED, placement_terms
from api.member_orders import IDEMPOTENCY_KEY
from api.schemas.common import MAX_ID
from api.schemas.dumping import planned_dump
from api.schemas.offers import FlashOrderCreateSchema
from api.schemas.orders import OrderSchema
from shop.core.errors import Unauthorized
from shop.offers.flash_sales import place_while_selling

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

LANE_EXTENSION = "groupshop.flash_lane"
PATH = re.compile(r"/api/v1/flash-sales/([1-9][0-9]{0,18})/orders")
MAX_BODY = 4096  # bytes: a placement's body is a few hundred; a larger one goes to the app
MAX_TERMS = 1024  # bodies whose terms the lane keeps (a stampede's buyers mostly send the same few)
_JSON_TYPES = ("application/json", "application/json; charset=utf-8", "application/json;charset=utf-8")


class FlashLane:
    """WSGI middleware: `FlashLane(app, app.wsgi_app)` (api.create_app installs it)."""

    def __init__(self, app: Flask, inner: WSGIApp) -> None:
        self.app = app
        self.inner = inner
        self.schema = FlashOrderCreateSchema()
        self.dump_order = planned_dump(OrderSchema())
        self.secret_key: str = app.config["SETTINGS"].secret_key
        self.taken = 0  # requests the lane answered (tests and benchmarks read it)
        self._count = threading.Lock()
        # (body, sale) -> the placement's terms, or None when the body is not the lane's case.
        self._terms: dict[tuple[bytes, int], dict[str, Any] | None] = {}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = self._request(environ)
        if request is None:
            return self.inner(environ, start_response)
        offer_id, caller, key, terms = request
        try:
            with self.app.app_context():
                outcome = place_while_selling(
                    caller.merchant_id,
                    caller.subject_id,
                    offer_id,
                    **terms,
                    selections=None,
                    idempotency_key=key,
                )
                placed = outcome.placed
                body = None if placed is None else self._json(self.dump_order(placed.order))
        except Exception as exc:  # the app's handlers answer (and log) it as they would for the view
            return self._error(environ, start_response, exc)
        if body is None:  # nothing was written: the app answers (a retry, a member with coupons...)
            if outcome.tried:
                environ[TRIED] = True  # without asking the one-round-trip placement again
            return self.inner(environ, start_response)
        with self._count:
            self.taken += 1
        headers = [
            ("Content-Type", self.app.json.mimetype),  # type: ignore[attr-defined]
            ("Content-Length", str(len(body))),
            ("X-Content-Type-Options", "nosniff"),
        ]
        start_response("201 CREATED", headers)
        return [body]

    def _json(self, data: Any) -> bytes:
        """The body `app.json.response(data)` holds: the app's JSON provider, its layout (indented
        when the app debugs and the provider is not compact), a newline."""
        provider: Any = self.app.json
        compact = getattr(provider, "compact", None)
        layout: dict[str, Any] = (
            {"indent": 2} if (compact is None and self.app.debug) or compact is False else {"separators": (",", ":")}
        )
        return f"{provider.dumps(data, **layout)}\n".encode()

    def _request(self, environ: dict[str, Any]) -> tuple[int, Any, str, dict[str, Any]] | None:
        """(sale, caller, key, the placement's terms) when the request is the lane's case; None
        otherwise (whatever went wrong in looking: the app answers it). The body read is put back
        for the app."""
        try:
            return self._look(environ)
        except Exception:
            return None

    def _look(self, environ: dict[str, Any]) -> tuple[int, Any, str, dict[str, Any]] | None:
        if environ.get("REQUEST_METHOD") != "POST" or environ.get("QUERY_STRING"):
            return None
        match = PATH.fullmatch(environ.get("PATH_INFO", ""))
        if match is None or int(match.group(1)) > MAX_ID:
            return None
        if environ.get("CONTENT_TYPE", "").lower() not in _JSON_TYPES or "HTTP_TRANSFER_ENCODING" in environ:
            return None
        length = environ.get("CONTENT_LENGTH", "")
        if not (length.isascii() and length.isdigit()) or not 0 < int(length) <= MAX_BODY:
            return None
        if oversized(environ) is not None:
            return None
        key = environ.get("HTTP_IDEMPOTENCY_KEY", "")
        if not IDEMPOTENCY_KEY.fullmatch(key):
            return None
        try:
            caller = caller_of(environ.get("HTTP_AUTHORIZATION", ""), self.secret_key)
        except Unauthorized:
            return None
        if caller.kind != MEMBER:
            return None
        body = environ["wsgi.input"].read(int(length))
        environ["wsgi.input"] = io.BytesIO(body)
        if len(body) != int(length):  # the client sent less than it said: the app refuses it
            return None
        offer_id = int(match.group(1))
        cached = (body, offer_id)
        try:
            terms = self._terms[cached]
        except KeyError:
            terms = self._terms_of(body, offer_id)
            if len(self._terms) >= MAX_TERMS:
                self._terms.clear()
            self._terms[cached] = terms
        if terms is None:
            return None
        return offer_id, caller, key, terms

    def _terms_of(self, body: bytes, offer_id: int) -> dict[str, Any] | None:
        """The placement's terms (`placement_terms`) of a body the endpoint's schema loads, with
        no coupons or selections; None for any other body. A pure function of the body's bytes and
        the sale (kept per body: the buyers of a stampede send the same few bodies); the address
        is read-only, as the terms are shared by the requests that sent that body."""
        try:
            data = json.loads(body.decode("utf-8"))  # as the app's parser: UTF-8, no BOM
            args = self.schema.load(data) if isinstance(data, dict) else None
        except (ValueError, RecursionError, ValidationError):
            return None
        if not args or "coupons" in args or "selections" in args:
            return None
        terms = placement_terms(args, offer_id)
        if terms["address"] is not None:
            terms["address"] = MappingProxyType(terms["address"])
        return terms

    def _error(self, environ: dict[str, Any], start_response: Callable[..., Any], exc: Exception) -> Iterable[bytes]:
        """The answer the app gives when its view raises `exc`: its error handlers, then its
        response hooks."""
        with self.app.request_context(environ):
            response = self.app.finalize_request(self.app.handle_user_exception(exc))
        return response(environ, start_response)


def install_flash_lane(app: Flask) -> None:
    lane = app.extensions[LANE_EXTENSION] = FlashLane(app, app.wsgi_app)
    app.wsgi_app = lane  # type: ignore[method-assign]
