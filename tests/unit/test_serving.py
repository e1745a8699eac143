"""api.serving: gunicorn sends a response's head and a body it has whole in one send, with the
same bytes as its own two sends; everything else (a body in pieces, chunked, none) as before."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from gunicorn.config import Config
from gunicorn.http import wsgi

from api import serving


class Socket:
    def __init__(self) -> None:
        self.sends: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.sends.append(bytes(data))


def _response(method: str = "GET") -> tuple[wsgi.Response, Socket]:
    request = SimpleNamespace(version=(1, 1), method=method, should_close=lambda: False)
    sock = Socket()
    return wsgi.Response(request, sock, Config()), sock


def _answer(
    headers: list[tuple[str, str]], pieces: list[bytes], *, status: str = "201 CREATED", method: str = "GET"
) -> list[bytes]:
    response, sock = _response(method)
    response.start_response(status, headers)
    for piece in pieces:
        response.write(piece)
    response.close()
    return sock.sends


def test_a_body_sent_whole_goes_with_the_head_in_one_send(monkeypatch):
    body = b'{"id": 1}\n'
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    monkeypatch.setattr(wsgi.Response, "write", wsgi.Response.write)
    before = _answer(headers, [body])
    serving.one_send_per_response()
    serving.one_send_per_response()  # idempotent: patched once
    after = _answer(headers, [body])
    assert len(before) == 2 and len(after) == 1
    assert _without_date(after[0]) == _without_date(b"".join(before))


@pytest.mark.parametrize(
    ("case", "headers", "pieces", "status", "method"),
    [
        ("a body in pieces", [("Content-Length", "6")], [b"abc", b"def"], "200 OK", "GET"),
        ("no length: chunked", [("Content-Type", "text/plain")], [b"abc"], "200 OK", "GET"),
        ("a HEAD", [("Content-Length", "3")], [b"abc"], "200 OK", "HEAD"),
        ("a 204", [], [b""], "204 NO CONTENT", "GET"),
        ("a body longer than said", [("Content-Length", "2")], [b"abc"], "200 OK", "GET"),
        ("nothing written", [("Content-Length", "0")], [], "200 OK", "GET"),
    ],
)
def test_anything_else_is_sent_as_gunicorn_sends_it(monkeypatch, case, headers, pieces, status, method):
    monkeypatch.setattr(wsgi.Response, "write", wsgi.Response.write)
    before = _answer(headers, pieces, status=status, method=method)
    serving.one_send_per_response()
    after = _answer(headers, pieces, status=status, method=method)
    assert [_without_date(s) for s in after] == [_without_date(s) for s in before], case


def test_the_config_module_gives_gunicorn_the_hook():
    assert serving.serving_args() == ["--config", "python:api.serving"]
    config = Config()
    config.set("post_worker_init", serving.post_worker_init)
    assert config.post_worker_init is serving.post_worker_init


def _without_date(data: bytes) -> bytes:
    return b"\r\n".join(line for line in data.split(b"\r\n") if not line.startswith(b"Date: "))
