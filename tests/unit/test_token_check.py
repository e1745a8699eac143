"""A token of our own making is checked without PyJWT's per-character scan (api.auth._issued_here),
and every token, ours or not, gets exactly the answer PyJWT's check gives."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest

from api import auth
from shop.core.errors import Unauthorized

KEY = "test-secret-" + "k" * 60
NOW = int(time.time())
DAYS_30 = 30 * 86400  # long after the tests run, however late after their import
MEMBER = {"sub": "42", "mid": 7, "role": "member", "typ": "member", "iat": NOW - 5, "exp": NOW + DAYS_30}
STAFF = {"sub": "3", "mid": 7, "role": "owner", "typ": "staff", "iat": NOW - 5, "exp": NOW + DAYS_30, "ver": 2}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signed(header: bytes, payload: bytes, key: str = KEY) -> str:
    head, body = _b64(header), _b64(payload)
    signature = hmac.new(key.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(signature)}"


def _ours(**changes: object) -> str:
    return jwt.encode({**MEMBER, **changes}, KEY, algorithm="HS256")


VALID = _ours()
HEAD, BODY, SIGNATURE = VALID.split(".")
TOKENS = {
    "a member token": VALID,
    "a staff token": jwt.encode(STAFF, KEY, algorithm="HS256"),
    "expired": _ours(exp=NOW - 1),
    "issued in the future": _ours(iat=NOW + DAYS_30),
    "no iat": jwt.encode({k: v for k, v in MEMBER.items() if k != "iat"}, KEY, algorithm="HS256"),
    "exp a float": _ours(exp=NOW + DAYS_30 + 0.5),
    "exp a string": _signed(b'{"alg":"HS256","typ":"JWT"}', json.dumps({**MEMBER, "exp": str(NOW + 60)}).encode()),
    "exp true": _signed(b'{"alg":"HS256","typ":"JWT"}', json.dumps({**MEMBER, "exp": True}).encode()),
    "not before later": _ours(nbf=NOW + DAYS_30),
    "an audience": _ours(aud="someone"),
    "another key": jwt.encode(MEMBER, "another-" + "k" * 40, algorithm="HS256"),
    "alg none": _b64(b'{"alg":"none","typ":"JWT"}') + "." + BODY + ".",
    "another header order": _signed(b'{"typ":"JWT","alg":"HS256"}', json.dumps(MEMBER).encode()),
    "HS512": jwt.encode(MEMBER, KEY, algorithm="HS512"),
    "no sub": jwt.encode({k: v for k, v in MEMBER.items() if k != "sub"}, KEY, algorithm="HS256"),
    "sub an int": _ours(sub=42),
    "payload a list": _signed(b'{"alg":"HS256","typ":"JWT"}', b"[1, 2]"),
    "payload not JSON": _signed(b'{"alg":"HS256","typ":"JWT"}', b"{nope"),
    "payload not UTF-8": _signed(b'{"alg":"HS256","typ":"JWT"}', b'{"sub": "\xff"}'),
    "a signature of one character": f"{HEAD}.{BODY}.a",
    "a padded signature": f"{HEAD}.{BODY}.{SIGNATURE}=",
    "junk in the signature": f"{HEAD}.{BODY}.{SIGNATURE[:-4]}!!!!",
    "a fourth segment": f"{VALID}.x",
    "an empty signature": f"{HEAD}.{BODY}.",
    "two segments": f"{HEAD}.{BODY}",
    "empty": "",
    "a tampered payload": f"{HEAD}.{_b64(json.dumps({**MEMBER, 'sub': '43'}).encode())}.{SIGNATURE}",
}


def _answer(check, token: str) -> object:
    try:
        return check(token, KEY)
    except Unauthorized as exc:
        return exc.code


def _pyjwt_only(monkeypatch: pytest.MonkeyPatch):
    """_verified as it is with every token judged by PyJWT."""
    monkeypatch.setattr(auth, "_issued_here", lambda token, key: None)
    return auth._verified.__wrapped__


@pytest.mark.parametrize("case", list(TOKENS))
def test_every_token_gets_the_answer_pyjwt_gives(case, monkeypatch):
    token = TOKENS[case]
    ours = _answer(auth._verified.__wrapped__, token)
    with monkeypatch.context() as patched:
        theirs = _answer(_pyjwt_only(patched), token)
    assert ours == theirs, case


def test_tokens_of_our_making_skip_pyjwt_and_nothing_else_does():
    taken = {case for case, token in TOKENS.items() if auth._issued_here(token, KEY) is not None}
    assert taken == {"a member token", "a staff token", "no iat"}
    assert auth._issued_here(VALID, KEY) == jwt.decode(VALID, KEY, algorithms=["HS256"])
    caller, expires = auth._verified.__wrapped__(VALID, KEY)
    assert (caller.kind, caller.subject_id, caller.merchant_id, expires) == ("member", 42, 7, NOW + DAYS_30)
    assert _answer(auth._verified.__wrapped__, TOKENS["expired"]) == "token_expired"
    assert _answer(auth._verified.__wrapped__, TOKENS["another key"]) == "token_invalid"
