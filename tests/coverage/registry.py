"""The registry the coverage tests read: each package declares its own endpoints' cases.

The invalid-input tests (tests/api/test_invalid_input.py) and the tenant-isolation tests
(tests/api/test_tenant_isolation.py) walk the app's url map and fail for an endpoint without an
entry here. A package registers its entries from a module named `*_cases.py` anywhere under
tests/ (tests/api/catalog_cases.py, tests/coupons/coupons_cases.py, ...): `load_cases()` imports
every such module, so a new package adds a file and never edits a central one.

    from tests.coverage import registry
    from tests.coverage.invalid_input import Bad, Endpoint, PREFIX, with_

    COUPON_CLAIM = ("/api/v1/coupons/<int:coupon_id>/claim", "POST")
    registry.add_endpoints({COUPON_CLAIM: Endpoint(lambda w: ..., "member", "json", lambda w: {})})
    registry.add_cases([Bad(COUPON_CLAIM, "a field nobody sends", with_(x=1), ("x",), "Unknown field.")])
    registry.add_path_cases([PathCase("POST", COUPON_CLAIM[0], "member", {"coupon_id": ...})])

What the cases are (World/Endpoint/Bad, Shop/PathCase/BodyCase) is in tests/coverage/invalid_input.py
and tests/coverage/isolation.py. A package whose endpoints act on rows of its own gives the
invalid-input world an `Endpoint.setup` (run for its endpoint only; what it returns is
`world.extras`), and the isolation shops a part (`add_shop_part`: run for both shops; what it
returns is `shop.extras`).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parent.parent

_endpoints: dict[tuple[str, str], Any] = {}
_endpoint_sources: dict[tuple[str, str], str] = {}
_cases: list[Any] = []
_path_cases: list[Any] = []
_body_cases: list[Any] = []
_shop_parts: list[Callable[..., dict[str, Any]]] = []
_loaded = False


def _source(depth: int = 2) -> str:
    return sys._getframe(depth).f_globals.get("__name__", "?")


def add_endpoints(endpoints: dict[tuple[str, str], Any]) -> None:
    """Each endpoint that takes input (a JSON body or a query string), with its valid request."""
    source = _source()
    for key, endpoint in endpoints.items():
        if key in _endpoints and _endpoint_sources[key] != source:
            raise ValueError(f"{key} is registered twice: by {_endpoint_sources[key]} and by {source}")
        _endpoints[key] = endpoint
        _endpoint_sources[key] = source


def add_cases(cases: Iterable[Any]) -> None:
    """Bad requests of registered endpoints (the generic ones are made for every endpoint)."""
    _cases.extend(cases)


def add_path_cases(cases: Iterable[Any]) -> None:
    """Isolation cases of routes with an id (or a merchant) in their path: one per route and method."""
    _path_cases.extend(cases)


def add_body_cases(cases: Iterable[Any]) -> None:
    """Isolation cases of ids sent in a body: another merchant's id is refused like a missing one."""
    _body_cases.extend(cases)


def add_shop_part(part: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """`part(client, shop)` makes rows of a package for an isolation shop and returns the ids its
    cases need (read as `shop.extras[...]`). Usable as a decorator."""
    if part not in _shop_parts:
        _shop_parts.append(part)
    return part


def load_cases() -> None:
    """Import every `*_cases.py` module under tests/ (once): each registers its entries."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in sorted(_case_modules()):
        importlib.import_module(module)


def _case_modules() -> Iterable[str]:
    for path in TESTS.rglob("*_cases.py"):
        relative = path.relative_to(TESTS.parent).with_suffix("")
        if any(
            not (TESTS.parent / Path(*relative.parts[:i]) / "__init__.py").exists()
            for i in range(1, len(relative.parts))
        ):
            raise RuntimeError(f"{path} is not in a package: add an __init__.py so it can be imported")
        yield ".".join(relative.parts)


def endpoints() -> dict[tuple[str, str], Any]:
    load_cases()
    return dict(_endpoints)


def endpoint_source(key: tuple[str, str]) -> str:
    return _endpoint_sources[key]


def cases() -> list[Any]:
    load_cases()
    return list(_cases)


def path_cases() -> list[Any]:
    load_cases()
    return list(_path_cases)


def body_cases() -> list[Any]:
    load_cases()
    return list(_body_cases)


def shop_parts() -> list[Callable[..., dict[str, Any]]]:
    load_cases()
    return list(_shop_parts)


__all__ = [
    "add_body_cases",
    "add_cases",
    "add_endpoints",
    "add_path_cases",
    "add_shop_part",
    "body_cases",
    "cases",
    "endpoints",
    "load_cases",
    "path_cases",
    "shop_parts",
]
