"""The import rules of ARCHITECTURE.md: api -> coupons, distribution -> shop; shop imports
neither; coupons and distribution do not import each other; nothing below api touches
flask.request, flask.g or api."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FORBIDDEN = {
    "shop": {"api", "coupons", "distribution"},
    "coupons": {"api", "distribution"},
    "distribution": {"api", "coupons"},
}
REQUEST_STATE = {"request", "g"}


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [alias.name for alias in node.names]))
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_lower_packages_import_only_downwards(package):
    offences = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for module, names in _imports(path):
            top = module.split(".")[0]
            if top in FORBIDDEN[package]:
                offences.append(f"{path.relative_to(ROOT)} imports {module}")
            if module == "flask" and REQUEST_STATE & set(names):
                offences.append(f"{path.relative_to(ROOT)} imports flask.{REQUEST_STATE & set(names)}")
            if module in ("flask.request", "flask.g", "flask.globals"):
                offences.append(f"{path.relative_to(ROOT)} imports {module}")
    assert offences == []


def test_the_checker_sees_a_forbidden_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from flask import g, current_app\nimport api.auth\n")
    modules = _imports(bad)
    assert ("flask", ["g", "current_app"]) in modules
    assert ("api.auth", []) in modules
