"""WSGI apps for bench/request_floor.py (benchmark only, never deployed): how much of a request's
cost is the stack's before any work of the shop.

- `bare`: Flask alone, no extension, no hook: the POST reads the JSON body and answers 201.
- `app`: the real API (`api.create_app`, every hook and extension) with four probe routes under
  /api/v1/bench-floor/ on the member flash-sale blueprint, each adding one layer of a flash
  placement: the member's token (`member_required`), the placement's body schema
  (`FlashOrderCreateSchema`, through flask-smorest as the real endpoint), then either one Redis
  round trip (a Lua call through the request path's guarded client, as the sold-out gate makes)
  or one PostgreSQL statement in autocommit (as the one-round-trip placement makes).
"""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import text

from api import create_app
from api import member_flash_sales as flash
from api.auth import current_caller, member_required
from api.schemas.offers import FlashOrderCreateSchema
from shop.core.cache import redis_client
from shop.core.db import db

PREFIX = "/bench-floor"  # under the blueprint's /api/v1
_ONE_CALL = "return redis.call('INCR', KEYS[1])"

bare = Flask("bench_floor_bare")


@bare.get("/api/v1/ping")
def bare_ping() -> ResponseReturnValue:
    return jsonify(ok=True)


@bare.post("/bare")
def bare_post() -> ResponseReturnValue:
    return jsonify(quantity=request.get_json()["quantity"]), 201


@flash.blp.route(f"{PREFIX}/auth", methods=["POST"])
@member_required
def with_auth() -> ResponseReturnValue:
    return jsonify(member=current_caller().subject_id), 201


@flash.blp.route(f"{PREFIX}/schema", methods=["POST"])
@member_required
@flash.blp.arguments(FlashOrderCreateSchema)
def with_schema(args: dict[str, Any]) -> ResponseReturnValue:
    return jsonify(quantity=args["quantity"]), 201


@flash.blp.route(f"{PREFIX}/redis", methods=["POST"])
@member_required
@flash.blp.arguments(FlashOrderCreateSchema)
def with_redis(args: dict[str, Any]) -> ResponseReturnValue:
    client = redis_client()
    count = client.register_script(_ONE_CALL)(keys=["gs:bench-floor"], client=client)
    return jsonify(quantity=args["quantity"], count=count), 201


# One row per request in bench_floor_rows (made by bench/request_floor.py before the load: two
# workers importing this module at once would race to make it), written by one statement that also
# makes its commit asynchronous (as a flash placement's), on a connection in autocommit (no BEGIN,
# no COMMIT).
_PG_ONE = text(
    "WITH s AS (SELECT set_config('synchronous_commit', 'off', true))"
    " INSERT INTO bench_floor_rows (member_id, quantity, created_at) SELECT :member, :quantity, now() FROM s"
    " RETURNING id"
)


@flash.blp.route(f"{PREFIX}/pg", methods=["POST"])
@member_required
@flash.blp.arguments(FlashOrderCreateSchema)
def with_pg(args: dict[str, Any]) -> ResponseReturnValue:
    connection = db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    row_id = connection.execute(_PG_ONE, {"member": current_caller().subject_id, "quantity": args["quantity"]}).scalar()
    return jsonify(quantity=args["quantity"], id=row_id), 201


app = create_app()
