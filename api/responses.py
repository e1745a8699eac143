"""Small helpers views share."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from flask import Response, current_app
from marshmallow import Schema

from shop.core.cache import cached


def cached_json(namespace: str, key_parts: dict[str, Any], schema: Schema, produce: Callable[[], Any]) -> Response:
    """Serve a member-facing read from the versioned cache; `produce` runs only on a miss."""
    key = hashlib.sha1(json.dumps(key_parts, sort_keys=True, default=str).encode()).hexdigest()
    ttl = current_app.config["SETTINGS"].catalog_cache_ttl

    def _render() -> bytes:
        return json.dumps(schema.dump(produce()), ensure_ascii=False, separators=(",", ":")).encode()

    body = cached(namespace, key, ttl, _render)
    return Response(body, status=200, mimetype="application/json")
