"""WeChat mini-program login (`code2session`) behind an interface.

`HttpWeChatAuth` calls WeChat's `jscode2session`; `FakeWeChatAuth` is the deterministic stand-in
for dev and tests, where the code `test:<name>` always yields the same openid for one appid.
Both turn WeChat's failures into domain errors with clear codes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

import requests

from shop.core.db import forbid_open_transaction
from shop.core.errors import InvalidInput, RateLimited, UpstreamError


@dataclass(frozen=True)
class WxSession:
    openid: str
    session_key: str
    unionid: str | None = None


class WeChatAuth(Protocol):
    def code2session(self, appid: str, secret: str, code: str) -> WxSession: ...


# errcode -> (domain error class, our code, message)
_ERRCODES: dict[int, tuple[type, str, str]] = {
    40029: (InvalidInput, "wechat_code_invalid", "the wx.login code is invalid"),
    40163: (InvalidInput, "wechat_code_used", "the wx.login code has already been used"),
    40226: (InvalidInput, "wechat_user_blocked", "WeChat refused this user (high risk)"),
    45011: (RateLimited, "wechat_rate_limited", "too many logins; try again in a minute"),
    40013: (UpstreamError, "wechat_appid_invalid", "the merchant's WeChat appid is invalid"),
    40125: (UpstreamError, "wechat_secret_invalid", "the merchant's WeChat app secret is invalid"),
    -1: (UpstreamError, "wechat_busy", "WeChat is busy; try again"),
}


def raise_for_errcode(errcode: int, errmsg: str) -> None:
    if not errcode:
        return
    cls, code, message = _ERRCODES.get(errcode, (UpstreamError, "wechat_error", "WeChat refused the login"))
    details = {"errcode": errcode, "errmsg": errmsg}
    if cls is InvalidInput:
        details["fields"] = {"code": [message]}
    raise cls(message, code=code, details=details)


class HttpWeChatAuth:
    """The real client. `base_url` is configurable so tests can point it at a local server."""

    def __init__(self, base_url: str = "https://api.weixin.qq.com", timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def code2session(self, appid: str, secret: str, code: str) -> WxSession:
        forbid_open_transaction("WeChat code2session")
        try:
            response = requests.get(
                f"{self.base_url}/sns/jscode2session",
                params={"appid": appid, "secret": secret, "js_code": code, "grant_type": "authorization_code"},
                timeout=self.timeout,
            )
            response.raise_for_status()
            body = response.json()
            if not isinstance(body, dict):  # valid JSON, but not the object jscode2session answers
                raise ValueError("jscode2session did not answer a JSON object")
        except (requests.RequestException, ValueError) as exc:
            raise UpstreamError(
                "WeChat could not be reached", code="wechat_unreachable", details={"reason": type(exc).__name__}
            ) from exc
        raise_for_errcode(int(body.get("errcode") or 0), str(body.get("errmsg", "")))
        if not body.get("openid") or not body.get("session_key"):
            raise UpstreamError("WeChat answered without an openid", code="wechat_error")
        return WxSession(openid=body["openid"], session_key=body["session_key"], unionid=body.get("unionid"))


class FakeWeChatAuth:
    """`test:<name>` -> a stable openid per (appid, name); anything else is an invalid code.

    Like the real client it stands for, it is a network call: called with a database transaction
    open it refuses (`TransactionOpen`), so dev and the tests catch a login that would hold one.
    """

    PREFIX = "test:"

    def code2session(self, appid: str, secret: str, code: str) -> WxSession:
        forbid_open_transaction("WeChat code2session")
        if not code.startswith(self.PREFIX) or len(code) == len(self.PREFIX):
            raise_for_errcode(40029, "invalid code (fake WeChat accepts test:<name>)")
        name = code[len(self.PREFIX) :]
        digest = hashlib.sha256(f"{appid}:{name}".encode()).hexdigest()
        return WxSession(openid=f"o{digest[:27]}", session_key=digest[32:56])
