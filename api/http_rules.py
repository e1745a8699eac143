"""What every response carries, and how large a request may be.

- Every response, errors included, says `X-Content-Type-Options: nosniff`: a browser must take
  the type we send and never guess another (an error that echoes input is JSON, never HTML).
- A response that carries a token (any view that calls `api.auth.issue_token`) says
  `Cache-Control: no-store` and `Pragma: no-cache`, so that no browser, proxy or CDN keeps it.
- A request has documented limits (README, "Limits"): its URL, each of its headers and the number
  of headers (the body's limit is Flask's MAX_CONTENT_LENGTH). The app refuses a request over them
  with the JSON error envelope before any view runs. Under gunicorn (`make run`) the same limits
  are given to gunicorn with headroom (`GUNICORN_LIMITS`): a request between the app's limit and
  gunicorn's still reaches the app and gets the envelope; only one far beyond is stopped by
  gunicorn itself, with its own (HTML) 414 or 431 page.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from flask import Flask, Response, g, request

from api.errors import envelope

MAX_URL_BYTES = 4096  # the request target as sent: path and query string, percent-encoded
MAX_HEADER_BYTES = 8192  # one header: its name and its value
MAX_HEADERS = 100

# gunicorn's own limits: a request line of at most 8190 bytes (gunicorn's maximum; it holds the
# method, the URL and the protocol), a header line of at most 16 KiB, at most 128 headers.
GUNICORN_LIMITS = {
    "--limit-request-line": 8190,
    "--limit-request-field_size": 2 * MAX_HEADER_BYTES,
    "--limit-request-fields": 128,
}

_NO_STORE = "groupshop_no_store"
# The URL characters a client may send unencoded in a path (RFC 3986 pchar and "/").
_PATH_SAFE = "/:@!$&'()*+,;="


def gunicorn_limit_args() -> list[str]:
    """gunicorn's command-line options for the limits above."""
    return [part for option, value in GUNICORN_LIMITS.items() for part in (option, str(value))]


def forbid_storing_response() -> None:
    """Mark the response to the current request as one no cache may keep (it carries a secret)."""
    g.setdefault(_NO_STORE, True)


def _target_length(environ: dict[str, Any]) -> int:
    """The length of the URL as the client sent it. gunicorn and werkzeug give it (RAW_URI /
    REQUEST_URI); otherwise it is rebuilt from the decoded path, at least as long as the original."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        return len(raw)
    path = (environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")).encode("latin-1", "replace")
    query = environ.get("QUERY_STRING", "")
    return len(quote(path, safe=_PATH_SAFE)) + (len(query) + 1 if query else 0)


def _headers(environ: dict[str, Any]) -> list[tuple[str, str]]:
    """The request's headers as (name, value), from the WSGI environ (which spells a name as
    HTTP_X_NAME, and Content-Type and Content-Length without the prefix)."""
    found = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            name = key[5:]
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            name = key
        else:
            continue
        found.append(("-".join(part.capitalize() for part in name.split("_")), str(value)))
    return found


def _refuse_oversized_request() -> Response | None:
    over = oversized(request.environ)
    if over is not None:
        return envelope(*over)
    return _refuse_oversized_stream()


def oversized(environ: dict[str, Any]) -> tuple[int, str, str, dict[str, Any]] | None:
    """What refuses the request for its URL or its headers (status, code, message, details), if anything."""
    length = _target_length(environ)
    if length > MAX_URL_BYTES:
        return (
            414,
            "uri_too_long",
            f"the URL is longer than {MAX_URL_BYTES} bytes",
            {"limit": MAX_URL_BYTES, "length": length},
        )
    headers = _headers(environ)
    if len(headers) > MAX_HEADERS:
        return (
            431,
            "too_many_headers",
            f"the request has more than {MAX_HEADERS} headers",
            {"limit": MAX_HEADERS, "count": len(headers)},
        )
    for name, value in headers:
        if len(name) + len(value) > MAX_HEADER_BYTES:
            return (
                431,
                "header_too_large",
                f"the {name} header is longer than {MAX_HEADER_BYTES} bytes",
                {"header": name, "limit": MAX_HEADER_BYTES},
            )
    return None


def _refuse_oversized_stream() -> Response | None:
    """A body sent without a Content-Length (chunked) is read up to the limit and no further: one
    that fills it is refused, where it would otherwise be cut short and parsed as if complete.
    (With a Content-Length, werkzeug refuses an oversized body itself.)"""
    limit = request.max_content_length
    if limit is None or request.content_length is not None or "wsgi.input_terminated" not in request.environ:
        return None
    if len(request.get_data(cache=True)) < limit:
        return None
    return envelope(413, "payload_too_large", f"the body is larger than {limit} bytes", {"limit": limit})


def _security_headers(response: Response) -> Response:
    response.headers["X-Content-Type-Options"] = "nosniff"
    if g.get(_NO_STORE):
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
    return response


def register_http_rules(app: Flask) -> None:
    """Install the request limits (first of the app's before-request hooks) and the response headers."""
    app.before_request_funcs.setdefault(None, []).insert(0, _refuse_oversized_request)
    app.after_request(_security_headers)
