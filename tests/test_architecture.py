"""The package's layers, checked on its source: a lower layer never imports a
higher one, nothing above the core reaches into the core's private modules,
there is no import cycle, and no import hides inside a function.

Layers, bottom up: ``_core`` <- ``actors`` <- ``supervision`` <- ``web`` <- ``health``
<- ``observer`` <- ``resilience`` <- ``metrics`` <- ``distribution`` <- ``testing``
(see docs/architecture.md).
The top-level ``asyncotp/__init__.py`` (and ``asyncotp/__main__.py``, the
command line) re-exports the public namespaces and sits above all but
``testing``, which users import on demand.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "asyncotp"

LAYERS = (
    "_core",
    "actors",
    "supervision",
    "web",
    "health",
    "observer",
    "resilience",
    "metrics",
    "distribution",
    "asyncotp",
    "testing",
)
"""Bottom up; ``asyncotp`` stands for the top-level ``__init__`` and ``__main__``."""

OPTIONAL = {"uvicorn", "hypothesis", "pytest", "uvloop"}
"""Third-party packages that are not run-time dependencies: imported only
where their feature is used (a lazy import there is the point, not a dodge)."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(SRC.rglob("*.py"))}


TOP_LEVEL_MODULES = {"from_thread", "sys", "__main__", "telemetry"}
"""Public modules of the top-level package itself (``asyncotp.from_thread``):
they sit in the ``asyncotp`` layer."""


def layer_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in TOP_LEVEL_MODULES:
        return "asyncotp"
    return parts[1]


def is_package(module: str) -> bool:
    return modules()[module].name == "__init__.py"


def imports_of(module: str, tree: ast.Module) -> Iterator[tuple[ast.stmt, str]]:
    """Every asyncotp module that ``module`` imports, resolved to a full name,
    with the statement (anywhere in the file, TYPE_CHECKING blocks included)."""
    package = module if is_package(module) else module.rpartition(".")[0]
    known = modules()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "asyncotp":
                    yield node, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                if node.level > 1:
                    base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "asyncotp":
                continue
            if not node.module or (target in known and is_package(target)):
                # `from . import actors`, `from .._core import x`: a submodule
                # named like the imported name is imported too.
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    yield node, sub if sub in known else target
            else:
                yield node, target


def parsed() -> dict[str, ast.Module]:
    return {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in modules().items()}


def test_the_layers_are_the_ones_documented() -> None:
    found = {layer_of(name) for name in modules()}
    assert found == set(LAYERS)


def test_a_lower_layer_never_imports_a_higher_one() -> None:
    wrong = []
    for module, tree in parsed().items():
        rank = LAYERS.index(layer_of(module))
        for node, target in imports_of(module, tree):
            if LAYERS.index(layer_of(target)) > rank:
                wrong.append(f"{module} (line {node.lineno}) imports {target}")
    assert wrong == []


def test_only_the_core_imports_the_cores_private_modules() -> None:
    # Everything above goes through asyncotp._core's documented API.
    wrong = []
    for module, tree in parsed().items():
        if layer_of(module) == "_core":
            continue
        for node, target in imports_of(module, tree):
            if target.startswith("asyncotp._core."):
                wrong.append(f"{module} (line {node.lineno}) imports {target}")
    assert wrong == []


def test_health_never_imports_resilience() -> None:
    wrong = [
        f"{module} imports {target}"
        for module, tree in parsed().items()
        if layer_of(module) == "health"
        for _node, target in imports_of(module, tree)
        if layer_of(target) == "resilience"
    ]
    assert wrong == []


def test_the_observer_imports_neither_resilience_nor_testing() -> None:
    wrong = [
        f"{module} imports {target}"
        for module, tree in parsed().items()
        if layer_of(module) == "observer"
        for _node, target in imports_of(module, tree)
        if layer_of(target) in ("resilience", "testing")
    ]
    assert wrong == []


def test_there_is_no_import_cycle() -> None:
    graph: dict[str, set[str]] = {name: set() for name in modules()}
    for module, tree in parsed().items():
        for _node, target in imports_of(module, tree):
            if target in graph and target != module:
                graph[module].add(target)
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        stack.append(name)
        for nxt in sorted(graph[name]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
    assert cycles == []


def test_no_import_hides_inside_a_function() -> None:
    wrong = []
    for module, tree in parsed().items():
        for func in ast.walk(tree):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(func):
                if isinstance(node, ast.Import):
                    names = [alias.name.split(".")[0] for alias in node.names]
                elif isinstance(node, ast.ImportFrom):
                    names = [(node.module or "").split(".")[0]] if not node.level else ["."]
                else:
                    continue
                if not set(names) <= OPTIONAL:
                    wrong.append(f"{module}.{func.name} (line {node.lineno}) imports {names}")
    assert wrong == []


def test_private_modules_have_no_all() -> None:
    wrong = [
        module
        for module, tree in parsed().items()
        if module.rpartition(".")[2].startswith("_") and not is_package(module)
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)
    ]
    assert wrong == []


@pytest.mark.parametrize("module", sorted(modules()))
def test_a_module_stays_under_700_lines(module: str) -> None:
    lines = modules()[module].read_text(encoding="utf-8").count("\n")
    assert lines <= 700, f"{module} has {lines} lines: split it by concept"


def test_the_checks_see_a_violation() -> None:
    # The parser resolves relative imports the way Python does, so that the
    # rules above cannot pass by misreading them.
    tree = ast.parse("from ..supervision import Supervisor\nfrom .._core._state import Node\n")
    found = [target for _node, target in imports_of("asyncotp.actors._genserver", tree)]
    assert found == ["asyncotp.supervision", "asyncotp._core._state"]
    assert layer_of("asyncotp.supervision") == "supervision"
    assert LAYERS.index("supervision") > LAYERS.index("actors")
