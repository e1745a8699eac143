import pytest

from shop.core.errors import InvalidInput, RateLimited, UpstreamError
from shop.identity.wechat import FakeWeChatAuth, raise_for_errcode


def test_the_fake_gives_a_stable_openid_per_app_and_name():
    fake = FakeWeChatAuth()
    first = fake.code2session("wxapp1", "secret", "test:alice")
    assert first.openid == fake.code2session("wxapp1", "other", "test:alice").openid
    assert first.openid != fake.code2session("wxapp1", "secret", "test:bob").openid
    assert first.openid != fake.code2session("wxapp2", "secret", "test:alice").openid
    assert first.session_key


@pytest.mark.parametrize("code", ["", "test:", "081abc", "TEST:alice"])
def test_the_fake_refuses_codes_that_are_not_test_codes(code):
    with pytest.raises(InvalidInput) as caught:
        FakeWeChatAuth().code2session("wxapp1", "secret", code)
    assert caught.value.code == "wechat_code_invalid"
    assert "code" in caught.value.details["fields"]


@pytest.mark.parametrize(
    ("errcode", "error", "code"),
    [
        (40029, InvalidInput, "wechat_code_invalid"),
        (40163, InvalidInput, "wechat_code_used"),
        (45011, RateLimited, "wechat_rate_limited"),
        (40013, UpstreamError, "wechat_appid_invalid"),
        (-1, UpstreamError, "wechat_busy"),
        (99999, UpstreamError, "wechat_error"),
    ],
)
def test_wechat_error_codes_become_clear_domain_errors(errcode, error, code):
    with pytest.raises(error) as caught:
        raise_for_errcode(errcode, "msg")
    assert caught.value.code == code
    assert caught.value.details["errcode"] == errcode


def test_errcode_zero_is_success():
    raise_for_errcode(0, "ok")
