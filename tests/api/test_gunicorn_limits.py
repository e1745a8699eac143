"""The request limits under a real gunicorn with the options `make run` gives it: a request over
the app's documented limit but within gunicorn's reaches the app and gets the JSON envelope; only
one far beyond is stopped by gunicorn itself, with the same status but its own small HTML page
(as the README says)."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.http_rules import GUNICORN_LIMITS, MAX_HEADER_BYTES, MAX_HEADERS, MAX_URL_BYTES, gunicorn_limit_args
from api.serving import serving_args
from tests.factories import free_port

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(scope="module")
def server(app, tmp_path_factory) -> Iterator[int]:
    settings = app.config["SETTINGS"]
    port = free_port()
    env = {
        **os.environ,
        "GROUPSHOP_ENV": "test",
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", f"127.0.0.1:{port}", "--workers", "1"]
    log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*command, *gunicorn_limit_args(), *serving_args()],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if _request(port, "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _request(port: int, target: str, headers: list[tuple[str, str]] = ()) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest("GET", target, skip_accept_encoding=True)
        for name, value in headers:
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def _gunicorns_own(response: tuple[int, dict[str, str], bytes]) -> int:
    status, headers, body = response
    assert headers["content-type"].startswith("text/html"), body[:200]
    return status


def _error_code(response: tuple[int, dict[str, str], bytes]) -> tuple[int, str]:
    status, headers, body = response
    assert headers["content-type"] == "application/json", body[:200]
    assert headers["x-content-type-options"] == "nosniff"
    return status, json.loads(body)["error"]["code"]


def test_gunicorn_is_given_more_room_than_the_app():
    assert GUNICORN_LIMITS["--limit-request-line"] > MAX_URL_BYTES + len("OPTIONS  HTTP/1.1")
    assert GUNICORN_LIMITS["--limit-request-field_size"] > MAX_HEADER_BYTES + len(": \r\n")
    assert GUNICORN_LIMITS["--limit-request-fields"] > MAX_HEADERS


def test_a_url_over_the_apps_limit_gets_the_envelope_and_far_over_it_gunicorns_page(server):
    assert _error_code(_request(server, "/api/v1/products?q=" + "a" * MAX_URL_BYTES)) == (414, "uri_too_long")
    assert _gunicorns_own(_request(server, "/api/v1/" + "x" * 8200)) == 414


def test_a_header_over_the_apps_limit_gets_the_envelope_and_far_over_it_gunicorns_page(server):
    over = [("X-Trace", "t" * (MAX_HEADER_BYTES + 100))]
    assert _error_code(_request(server, "/healthz", over)) == (431, "header_too_large")
    assert _gunicorns_own(_request(server, "/healthz", [("X-Trace", "t" * 3 * MAX_HEADER_BYTES)])) == 431


def test_too_many_headers_get_the_envelope_and_far_too_many_gunicorns_page(server):
    some_more = [(f"X-Extra-{i}", "1") for i in range(MAX_HEADERS + 5)]
    assert _error_code(_request(server, "/healthz", some_more)) == (431, "too_many_headers")
    assert _gunicorns_own(_request(server, "/healthz", [(f"X-Extra-{i}", "1") for i in range(200)])) == 431
