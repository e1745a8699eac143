"""The import rules of ARCHITECTURE.md.

Between packages: api -> coupons, distribution -> shop; shop imports neither; coupons and
distribution do not import each other; nothing below api touches flask.request, flask.g or api.

Inside shop: rooms, each importing only itself and the rooms before it in ROOMS (core first);
modules at shop's top level (the demo data, install) may import any room. And no import cycle between any
two modules of shop, counting every import: at module level, inside functions, under
TYPE_CHECKING. A service asks for later work by job name (shop.core.runner), never by importing
a jobs module, so jobs can import services without closing a circle.
"""

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
ROOMS = ("core", "identity", "catalog", "checkout", "orders", "payments", "offers")


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [alias.name for alias in node.names]))
    return found


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph(root: Path, package: str = "shop") -> dict[str, set[str]]:
    """Module -> the modules of `package` it imports (every import statement anywhere in it).
    `from a.b import c` counts as an import of a.b.c when that is a module, else of a.b."""
    paths = {_module_name(path, root): path for path in sorted((root / package).rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for module, path in paths.items():
        targets: set[str] = set()
        for imported, names in _imports(path):
            if imported.split(".")[0] != package:
                continue
            submodules = {f"{imported}.{name}" for name in names} & paths.keys()
            targets |= submodules or {imported}
            if submodules and len(submodules) < len(names):
                targets.add(imported)
        targets.discard(module)
        graph[module] = {target for target in targets if target in paths}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (a list of modules, the first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def _room(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[1] in ROOMS else None


def room_offences(graph: dict[str, set[str]]) -> list[str]:
    """Imports from a room into a later room (or into shop's top level)."""
    offences = []
    for module, targets in sorted(graph.items()):
        room = _room(module)
        if room is None and module.count(".") == 1 and module.split(".")[1] not in ROOMS:
            continue  # a top-level module of shop (demo data, install) stands above every room
        for target in sorted(targets):
            target_room = _room(target)
            if target_room is None:
                if target.count(".") >= 1 and target.split(".")[1] in ROOMS:
                    continue  # a room's package (its __init__), which holds no code
                offences.append(f"{module} imports {target}, above every room")
            elif room is not None and ROOMS.index(target_room) > ROOMS.index(room):
                offences.append(f"{module} ({room}) imports {target} ({target_room}, a later room)")
    return offences


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


def test_every_module_of_shop_is_in_a_room():
    rooms = {path.name for path in (ROOT / "shop").iterdir() if path.is_dir() and (path / "__init__.py").exists()}
    assert rooms == set(ROOMS)
    top_level = sorted(path.name for path in (ROOT / "shop").glob("*.py"))
    assert top_level == ["__init__.py", "demo.py", "install.py"]


def test_rooms_import_only_earlier_rooms():
    assert room_offences(import_graph(ROOT)) == []


def test_shop_has_no_import_cycle():
    assert find_cycle(import_graph(ROOT)) is None


def test_room_packages_hold_no_code():
    """A room's __init__ is its docstring: importing one module of a room loads no other."""
    for room in ROOMS:
        tree = ast.parse((ROOT / "shop" / room / "__init__.py").read_text(encoding="utf-8"))
        assert all(isinstance(node, ast.Expr) for node in tree.body), room


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_checker_sees_a_cycle_through_a_function_level_import(tmp_path):
    _write(
        tmp_path,
        {
            "shop/__init__.py": "",
            "shop/orders/__init__.py": "",
            "shop/orders/service.py": "def f():\n    from shop.orders import jobs\n",
            "shop/orders/jobs.py": "from shop.orders.service import f\n",
            "shop/orders/other.py": "import shop.orders.jobs\n",
        },
    )
    graph = import_graph(tmp_path)
    assert graph["shop.orders.service"] == {"shop.orders.jobs"}
    assert find_cycle(graph) == ["shop.orders.jobs", "shop.orders.service", "shop.orders.jobs"]


def test_the_checker_sees_a_rightward_import(tmp_path):
    _write(
        tmp_path,
        {
            "shop/__init__.py": "",
            "shop/orders/__init__.py": "",
            "shop/orders/service.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from shop.payments.providers import PaymentProvider\n",
            "shop/payments/__init__.py": "",
            "shop/payments/providers.py": "from shop.orders.service import x\n",
            "shop/demo.py": "from shop.payments import providers\n",
        },
    )
    graph = import_graph(tmp_path)
    assert room_offences(graph) == [
        "shop.orders.service (orders) imports shop.payments.providers (payments, a later room)"
    ]
    assert find_cycle(graph) == ["shop.payments.providers", "shop.orders.service", "shop.payments.providers"]
