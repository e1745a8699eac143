"""gunicorn's settings for the app's server, as a config module: `gunicorn --config
python:api.serving wsgi:app` (`serving_args()` gives the option; `make run` and the benchmarks pass
it).

One send per response. gunicorn writes a response's head (status line and headers) with one
`sendall` and its body with another, so every small answer costs the worker two system calls and
the client two wake-ups (`make bench-flash-sale` reports the CPU each side takes). So each worker,
once started, has gunicorn send the head together with the first piece of the body when that piece
is all the response has to send (a body of known length, not chunked, not a HEAD or a 204/304:
such an answer's head alone goes as before); anything else is written as gunicorn writes it.
The head is gunicorn's own (`Response.send_headers` writes it into a buffer instead of the
socket), so its headers and framing are exactly what gunicorn sends.
"""

from __future__ import annotations

from typing import Any

_MARK = "_groupshop_one_send"


def serving_args() -> list[str]:
    """gunicorn's command-line option that loads these settings."""
    return ["--config", f"python:{__name__}"]


def post_worker_init(worker: Any) -> None:
    """gunicorn's hook, in each worker once it has loaded the app."""
    one_send_per_response()


class _Head:
    """A stand-in socket that keeps what gunicorn writes to it (the response's head)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.parts.append(data)


def one_send_per_response() -> None:
    """Make gunicorn's Response write its head with the body when the body is sent in one piece
    (see the module's docstring). Idempotent."""
    from gunicorn.http import wsgi

    original = wsgi.Response.write
    if getattr(original, _MARK, False):
        return

    def write(self: Any, data: bytes) -> None:
        length = getattr(self, "response_length", None)
        whole = (
            not getattr(self, "headers_sent", True)
            and isinstance(data, bytes)
            and not getattr(self, "chunked", True)
            and not getattr(self, "_omits_body", True)
            and length is not None
            and getattr(self, "sent", None) == 0
            and len(data) == length
        )
        if not whole:
            original(self, data)
            return
        head, sock = _Head(), self.sock
        self.sock = head
        try:
            self.send_headers()  # gunicorn's own head, into the buffer
        finally:
            self.sock = sock
        sock.sendall(b"".join(head.parts) + data)
        self.sent = len(data)

    setattr(write, _MARK, True)
    wsgi.Response.write = write
