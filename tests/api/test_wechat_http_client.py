"""The real WeChat client (`HttpWeChatAuth`) against a local stub of `jscode2session`, and what
wx-login answers when WeChat refuses or cannot be reached."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from shop.core.db import db, transaction
from shop.core.errors import InvalidInput, RateLimited, UpstreamError
from shop.identity.models import Member, Merchant
from shop.identity.wechat import HttpWeChatAuth, WxSession
from tests.factories import make_merchant

WECHAT = "groupshop.wechat"
APP_SECRET = "merchant-app-secret-0123456789abcdef"


@dataclass
class WeChatStub:
    """Answers every request with `status` and `body`, and remembers what it was asked."""

    base_url: str = ""
    status: int = 200
    body: str = "{}"
    content_type: str = "application/json"
    hold: threading.Event | None = None  # when set, the answer waits until the event fires
    requests: list[dict[str, Any]] = field(default_factory=list)

    def answer(self, body: Any, status: int = 200, content_type: str = "application/json") -> None:
        self.body = body if isinstance(body, str) else json.dumps(body)
        self.status = status
        self.content_type = content_type

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.requests.append({"method": request.method, "path": request.path, "args": request.args.to_dict()})
        if self.hold is not None:
            self.hold.wait(5)
        response = Response(self.body, status=self.status, content_type=self.content_type)
        return response(environ, start_response)


@pytest.fixture
def stub() -> Iterator[WeChatStub]:
    wechat = WeChatStub()
    server: BaseWSGIServer = make_server("127.0.0.1", 0, wechat, threaded=True)
    wechat.base_url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield wechat
    finally:
        if wechat.hold is not None:
            wechat.hold.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 that is bound but not listening: connecting to it is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def success_body(**extra: Any) -> dict[str, Any]:
    return {"openid": "oAbC123openid", "session_key": "sessionKEY==", **extra}


# --- the client on its own


def test_a_success_body_gives_the_openid_and_session_key(stub):
    stub.answer(success_body())
    session = HttpWeChatAuth(stub.base_url).code2session("wxapp0001", "app-secret", "081code")
    assert session == WxSession(openid="oAbC123openid", session_key="sessionKEY==", unionid=None)


def test_the_request_carries_appid_secret_code_and_grant_type(stub):
    stub.answer(success_body())
    HttpWeChatAuth(stub.base_url).code2session("wxapp0001", "app-secret", "081a+b/c=d&e")
    assert stub.requests == [
        {
            "method": "GET",
            "path": "/sns/jscode2session",
            "args": {
                "appid": "wxapp0001",
                "secret": "app-secret",
                "js_code": "081a+b/c=d&e",
                "grant_type": "authorization_code",
            },
        }
    ]


def test_a_trailing_slash_on_the_base_url_is_harmless(stub):
    stub.answer(success_body())
    HttpWeChatAuth(stub.base_url + "/").code2session("wxapp0001", "app-secret", "081code")
    assert stub.requests[0]["path"] == "/sns/jscode2session"


def test_a_unionid_is_passed_through(stub):
    stub.answer(success_body(unionid="uUNION"))
    assert HttpWeChatAuth(stub.base_url).code2session("wxapp0001", "s", "081code").unionid == "uUNION"


def test_errcode_zero_alongside_an_openid_is_a_success(stub):
    stub.answer(success_body(errcode=0, errmsg="ok"))
    assert HttpWeChatAuth(stub.base_url).code2session("wxapp0001", "s", "081code").openid == "oAbC123openid"


def test_a_text_plain_content_type_is_still_read_as_json(stub):
    # jscode2session is known to answer JSON labelled text/plain.
    stub.answer(success_body(), content_type="text/plain")
    assert HttpWeChatAuth(stub.base_url).code2session("wxapp0001", "s", "081code").session_key == "sessionKEY=="


@pytest.mark.parametrize(
    ("errcode", "error", "code"),
    [
        (40029, InvalidInput, "wechat_code_invalid"),
        (40163, InvalidInput, "wechat_code_used"),
        (40226, InvalidInput, "wechat_user_blocked"),
        (45011, RateLimited, "wechat_rate_limited"),
        (-1, UpstreamError, "wechat_busy"),
        (40013, UpstreamError, "wechat_appid_invalid"),
        (40125, UpstreamError, "wechat_secret_invalid"),
        (61234, UpstreamError, "wechat_error"),
    ],
)
def test_a_wechat_errcode_becomes_a_clear_domain_error(stub, errcode, error, code):
    stub.answer({"errcode": errcode, "errmsg": f"refused, rid: {errcode}"})
    with pytest.raises(error) as caught:
        HttpWeChatAuth(stub.base_url).code2session("wxapp0001", "s", "081code")
    assert type(caught.value) is error
    assert caught.value.code == code
    assert caught.value.details["errcode"] == errcode
    assert caught.value.details["errmsg"] == f"refused, rid: {errcode}"


def test_an_invalid_code_names_the_code_field(stub):
    stub.answer({"errcode": 40029, "errmsg": "invalid code"})
    with pytest.raises(InvalidInput) as caught:
        HttpWeChatAuth(stub.base_url).code2session("wxapp0001", "s", "abc")
    assert caught.value.details["fields"]["code"]


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (200, "<html>502 Bad Gateway</html>", "text/html"),
        (200, "", "application/json"),
        (500, json.dumps(success_body()), "application/json"),
        (500, "Internal Server Error", "text/plain"),
        (502, "", "text/plain"),
        (404, "not found", "text/plain"),
    ],
)
def test_a_body_that_is_not_json_or_an_error_status_is_unreachable(stub, status, body, content_type):
    stub.answer(body, status=status, content_type=content_type)
    with pytest.raises(UpstreamError) as caught:
        HttpWeChatAuth(stub.base_url).code2session("wxapp0001", "s", "081code")
    assert caught.value.code == "wechat_unreachable"


@pytest.mark.parametrize("body", ["[]", "null", '"busy"', "42", "[1, 2]"])
def test_json_that_is_not_an_object_is_unreachable_not_a_crash(stub, body):
    stub.answer(body)
    with pytest.raises(UpstreamError) as caught:
        HttpWeChatAuth(stub.base_url).code2session("wxapp0001", "s", "081code")
    assert caught.value.code == "wechat_unreachable"


@pytest.mark.parametrize("body", [{"openid": "o1"}, {"session_key": "k"}, {"openid": "", "session_key": "k"}, {}])
def test_an_answer_without_openid_or_session_key_is_an_upstream_error(stub, body):
    stub.answer(body)
    with pytest.raises(UpstreamError) as caught:
        HttpWeChatAuth(stub.base_url).code2session("wxapp0001", "s", "081code")
    assert caught.value.code == "wechat_error"


def test_a_closed_port_is_unreachable(closed_port):
    with pytest.raises(UpstreamError) as caught:
        HttpWeChatAuth(f"http://127.0.0.1:{closed_port}").code2session("wxapp0001", "s", "081code")
    assert caught.value.code == "wechat_unreachable"
    assert caught.value.details == {"reason": "ConnectionError"}


def test_a_wechat_that_does_not_answer_in_time_is_unreachable(stub):
    stub.hold = threading.Event()
    stub.answer(success_body())
    with pytest.raises(UpstreamError) as caught:
        HttpWeChatAuth(stub.base_url, timeout=0.2).code2session("wxapp0001", "s", "081code")
    assert caught.value.code == "wechat_unreachable"
    assert caught.value.details == {"reason": "ReadTimeout"}


def test_the_unreachable_error_does_not_carry_the_secret(closed_port):
    with pytest.raises(UpstreamError) as caught:
        HttpWeChatAuth(f"http://127.0.0.1:{closed_port}").code2session("wxapp0001", APP_SECRET, "081code")
    assert APP_SECRET not in caught.value.message
    assert APP_SECRET not in json.dumps(caught.value.details)


# --- wx-login with the real client


@pytest.fixture
def http_wechat(app: Flask, stub: WeChatStub) -> Iterator[WeChatStub]:
    """The app's WeChat client swapped for the real one, pointed at the stub, for one test."""
    original = app.extensions[WECHAT]
    app.extensions[WECHAT] = HttpWeChatAuth(stub.base_url, timeout=2)
    try:
        yield stub
    finally:
        app.extensions[WECHAT] = original


@pytest.fixture
def merchant(ctx: Flask) -> Merchant:
    made = make_merchant()
    with transaction():
        db.session.get(Merchant, made.id).wx_secret = APP_SECRET
    return made


def member_count(merchant_id: int) -> int:
    return db.session.execute(select(func.count(Member.id)).where(Member.merchant_id == merchant_id)).scalar_one()


def login(client: Any, merchant: Merchant, code: str = "081code") -> Any:
    return client.post("/api/v1/auth/wx-login", json={"merchant": merchant.code, "code": code})


def error_of(response: Any, status: int, code: str) -> dict[str, Any]:
    body = response.get_json()
    assert response.status_code == status, body
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


def test_wx_login_through_the_real_client_creates_the_member(merchant, client, http_wechat):
    http_wechat.answer(success_body(unionid="uUNION"))
    response = login(client, merchant)
    assert response.status_code == 200, response.json
    assert response.json["new_member"] is True
    assert http_wechat.requests[0]["args"] == {
        "appid": merchant.wx_appid,
        "secret": APP_SECRET,
        "js_code": "081code",
        "grant_type": "authorization_code",
    }
    db.session.expire_all()
    member = db.session.get(Member, response.json["member"]["id"])
    assert (member.merchant_id, member.openid, member.session_key, member.unionid) == (
        merchant.id,
        "oAbC123openid",
        "sessionKEY==",
        "uUNION",
    )
    text = response.get_data(as_text=True)
    assert "sessionKEY==" not in text
    assert "session_key" not in text
    assert APP_SECRET not in text


@pytest.mark.parametrize(
    ("errcode", "status", "code"),
    [
        (40029, 422, "wechat_code_invalid"),
        (40163, 422, "wechat_code_used"),
        (45011, 429, "wechat_rate_limited"),
        (-1, 502, "wechat_busy"),
        (40125, 502, "wechat_secret_invalid"),
    ],
)
def test_wx_login_maps_wechat_refusals_to_statuses(merchant, client, http_wechat, errcode, status, code):
    http_wechat.answer({"errcode": errcode, "errmsg": "refused"})
    error = error_of(login(client, merchant), status, code)
    assert error["details"]["errcode"] == errcode
    assert member_count(merchant.id) == 0


def test_wx_login_with_an_invalid_code_names_the_code_field(merchant, client, http_wechat):
    http_wechat.answer({"errcode": 40029, "errmsg": "invalid code"})
    error = error_of(login(client, merchant, "abc"), 422, "wechat_code_invalid")
    assert error["details"]["fields"]["code"]
    assert http_wechat.requests[0]["args"]["js_code"] == "abc"


def test_wx_login_answers_502_when_wechat_is_unreachable(merchant, client, app, closed_port):
    original = app.extensions[WECHAT]
    app.extensions[WECHAT] = HttpWeChatAuth(f"http://127.0.0.1:{closed_port}", timeout=2)
    try:
        response = login(client, merchant)
    finally:
        app.extensions[WECHAT] = original
    error = error_of(response, 502, "wechat_unreachable")
    assert error["details"] == {"reason": "ConnectionError"}
    assert APP_SECRET not in response.get_data(as_text=True)
    assert member_count(merchant.id) == 0


@pytest.mark.parametrize(("status", "body"), [(500, "oops"), (200, "<html></html>"), (200, "[]")])
def test_wx_login_answers_502_when_wechat_answers_nonsense(merchant, client, http_wechat, status, body):
    http_wechat.answer(body, status=status, content_type="text/html")
    error_of(login(client, merchant), 502, "wechat_unreachable")
    assert member_count(merchant.id) == 0
