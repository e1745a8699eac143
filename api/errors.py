"""One error envelope for every 4xx and 5xx: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from redis.exceptions import RedisError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException, InternalServerError

from shop.core import errors as domain
from shop.core.db import db
from shop.core.integrity import translate
from shop.core.redisguard import UNREACHABLE

log = logging.getLogger(__name__)

STATUS_BY_ERROR: list[tuple[type[domain.DomainError], int]] = [
    (domain.NotFound, 404),
    (domain.Conflict, 409),
    (domain.InvalidInput, 422),
    (domain.Unauthorized, 401),
    (domain.Forbidden, 403),
    (domain.RateLimited, 429),
    (domain.UpstreamError, 502),
]

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


def envelope(status: int, code: str, message: str, details: Any = None) -> Response:
    response = jsonify({"error": {"code": code, "message": message, "details": details}})
    response.status_code = status
    return response


def status_for(error: domain.DomainError) -> int:
    for cls, status in STATUS_BY_ERROR:
        if isinstance(error, cls):
            return status
    return 400


def _validation_details(messages: dict[str, Any]) -> dict[str, Any]:
    """webargs gives {"json": {...}, "query": {...}}; clients want the fields at fault."""
    fields: dict[str, Any] = {}
    locations = []
    for location, errors in messages.items():
        locations.append(location)
        if isinstance(errors, dict):
            fields.update(errors)
        else:
            fields["_schema"] = errors
    return {"fields": fields, "locations": sorted(locations)}


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(domain.DomainError)
    def _domain(error: domain.DomainError) -> Response:
        response = envelope(status_for(error), error.code, error.message, error.details)
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            response.headers["Retry-After"] = str(retry_after)
        return response

    @app.errorhandler(IntegrityError)
    @app.errorhandler(StaleDataError)
    def _integrity(error: IntegrityError | StaleDataError) -> Response:
        """A write outside `transaction()` (which translates its own) that lost a race."""
        db.session.rollback()
        translated = translate(error)
        if isinstance(translated, domain.DomainError):
            return _domain(translated)
        return _internal(error)

    def _redis(error: RedisError) -> Response:
        # What a request needs Redis for falls back when it is out (cache, queue); this is for
        # the rest (e.g. the fake payment provider's state): a retryable 503, not a 500. Any other
        # RedisError is an answer Redis gave (a wrong type, a script error): a bug, so a 500.
        log.warning("Redis unavailable during a request: %s", error)
        return envelope(503, "unavailable", "a backing service is unavailable; try again shortly")

    for unreachable in UNREACHABLE:
        app.register_error_handler(unreachable, _redis)

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> Response:
        status = error.code or 500
        if status >= 500:
            return _internal(error)
        data = getattr(error, "data", None) or {}
        messages = data.get("messages")
        if status == 422 and messages:
            return envelope(422, "validation_error", "the request has invalid fields", _validation_details(messages))
        if status == 400 and messages:
            return envelope(400, "bad_request", "the request body is not valid JSON", _validation_details(messages))
        response = envelope(status, _HTTP_CODES.get(status, "http_error"), error.description or error.name)
        valid_methods = getattr(error, "valid_methods", None)
        if status == 405 and valid_methods:
            response.headers["Allow"] = ", ".join(valid_methods)
        return response

    @app.errorhandler(Exception)
    def _internal(error: Exception) -> Response:
        if isinstance(error, HTTPException) and (error.code or 500) < 500:
            return _http(error)
        if not isinstance(error, HTTPException) or isinstance(error, InternalServerError):
            log.exception("unhandled error", exc_info=error)
        status = error.code if isinstance(error, HTTPException) and error.code else 500
        return envelope(
            status, "internal_error" if status == 500 else "unavailable", "something went wrong on our side"
        )
