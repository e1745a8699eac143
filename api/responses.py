"""Small helpers views share."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Response, current_app, request
from marshmallow import Schema

from shop.core.cache import cached, peek_local

F = TypeVar("F", bound=Callable[..., Any])


def _request_key() -> str:
    """The cache key of this read: its endpoint, path parameters and query string as sent (sorted,
    repeats kept). Only a request that was answered 200 stores an entry under its key, so a key
    that is found names a query string that was valid."""
    parts = [request.endpoint, sorted((request.view_args or {}).items()), sorted(request.args.items(multi=True))]
    return hashlib.sha1(json.dumps(parts, separators=(",", ":"), default=str).encode()).hexdigest()


def cached_json(namespace: str, schema: Schema, produce: Callable[[], Any]) -> Response:
    """Serve a member-facing read from the versioned cache; `produce` runs only on a miss."""
    ttl = current_app.config["SETTINGS"].catalog_cache_ttl

    def _render() -> bytes:
        return json.dumps(schema.dump(produce()), ensure_ascii=False, separators=(",", ":")).encode()

    body = cached(namespace, _request_key(), ttl, _render)
    return Response(body, status=200, mimetype="application/json")


def local_hit_first(namespace_of: Callable[[], str]) -> Callable[[F], F]:
    """Answer a cached read from this process's copy before its arguments are parsed (the hot path
    of the catalog: a hit then costs the token check and a dictionary lookup). Put it under the
    auth decorator and above the arguments one; a miss goes on to the view and `cached_json`."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if current_app.config["SETTINGS"].catalog_cache_ttl > 0:
                body = peek_local(namespace_of(), _request_key())
                if body is not None:
                    return Response(body, status=200, mimetype="application/json")
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
