"""/healthz and /api/v1/ping."""

from __future__ import annotations

from flask import Response, current_app, jsonify
from flask_smorest import Blueprint
from marshmallow import Schema, fields
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from shop.core.cache import redis_client
from shop.core.db import db

blp = Blueprint("health", __name__, description="Liveness and readiness")


class HealthSchema(Schema):
    status = fields.String(metadata={"description": "ok or unavailable"})
    database = fields.String()
    redis = fields.String()


class PingSchema(Schema):
    ok = fields.Boolean()


@blp.route("/healthz")
@blp.response(200, HealthSchema)
@blp.alt_response(503, schema=HealthSchema, description="the database or Redis is down")
def healthz() -> Response:
    """200 when the database and Redis both answer, 503 otherwise."""
    checks = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except SQLAlchemyError as exc:
        current_app.logger.warning("health: database down: %s", exc)
        db.session.rollback()
        checks["database"] = "down"
    try:
        redis_client().ping()
        checks["redis"] = "ok"
    except RedisError as exc:
        current_app.logger.warning("health: redis down: %s", exc)
        checks["redis"] = "down"
    healthy = all(v == "ok" for v in checks.values())
    response = jsonify({"status": "ok" if healthy else "unavailable", **checks})
    response.status_code = 200 if healthy else 503
    return response


@blp.route("/api/v1/ping")
@blp.response(200, PingSchema)
def ping() -> dict[str, bool]:
    """A trivial answer with no I/O: for clients checking they can reach the API."""
    return {"ok": True}
