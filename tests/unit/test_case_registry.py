"""The registry of invalid-input and isolation cases: each package's `*_cases.py` is found and
registers its own endpoints; an endpoint claimed by two modules is refused."""

import pytest

from tests.coverage import registry

ROOMS = ("identity", "catalog", "checkout", "orders", "payments")


def test_every_cases_module_under_tests_is_found():
    modules = set(registry._case_modules())
    assert {f"tests.api.{room}_cases" for room in ROOMS} <= modules


@pytest.mark.parametrize(
    ("key", "room"),
    [
        (("/api/v1/auth/wx-login", "POST"), "identity"),
        (("/api/v1/merchant/products", "POST"), "catalog"),
        (("/api/v1/checkout/quote", "POST"), "checkout"),
        (("/api/v1/orders", "POST"), "orders"),
        (("/api/v1/payments/wechatpay/<merchant_code>/notify", "POST"), "payments"),
    ],
)
def test_each_endpoint_is_registered_by_its_rooms_module(key, room):
    assert key in registry.endpoints()
    assert registry.endpoint_source(key) == f"tests.api.{room}_cases"


def test_an_endpoint_registered_by_a_second_module_is_refused():
    taken = next(iter(registry.endpoints()))
    with pytest.raises(ValueError, match="registered twice"):
        registry.add_endpoints({taken: object()})


def test_every_registered_case_and_path_case_has_a_package():
    assert registry.cases() and registry.path_cases() and registry.body_cases()
    assert {case.key for case in registry.cases()} <= set(registry.endpoints())
