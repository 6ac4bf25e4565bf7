"""The public API: every name has exactly one public home, and the top level
re-exports them all (statically, so type checkers see them)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import types

import pytest

import asyncotp

NAMESPACES = ("actors", "supervision", "health", "resilience")


def namespace(name: str) -> types.ModuleType:
    return importlib.import_module(f"asyncotp.{name}")


def public_names(module: types.ModuleType) -> list[str]:
    """The namespace's ``__all__``; for a namespace without one, which only
    re-exports (``from ._x import Name as Name``), every name it binds without
    a leading underscore."""
    names = getattr(module, "__all__", None)
    if names is not None:
        return list(names)
    return [
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    ]


def test_the_top_level_exports_exactly_the_names_of_the_public_namespaces() -> None:
    union: set[str] = set()
    for name in NAMESPACES:
        union |= set(public_names(namespace(name)))
    assert set(asyncotp.__all__) == union
    assert len(asyncotp.__all__) == len(set(asyncotp.__all__))


def test_every_public_name_has_exactly_one_public_home() -> None:
    homes: dict[str, list[str]] = {}
    for name in NAMESPACES:
        for public in public_names(namespace(name)):
            homes.setdefault(public, []).append(name)
    assert {n: h for n, h in homes.items() if len(h) > 1} == {}


@pytest.mark.parametrize("name", NAMESPACES)
def test_every_name_of_a_namespace_is_the_same_object_at_the_top_level(name: str) -> None:
    module = namespace(name)
    for public in public_names(module):
        assert getattr(asyncotp, public) is getattr(module, public), public


def test_resilience_exports_every_name_of_its_private_modules() -> None:
    resilience = namespace("resilience")
    exported = set(public_names(resilience))
    for info in pkgutil.iter_modules(resilience.__path__):
        module = importlib.import_module(f"asyncotp.resilience.{info.name}")
        defined = {
            name
            for name, value in vars(module).items()
            if not name.startswith("_")
            and (inspect.isclass(value) or inspect.isfunction(value))
            and value.__module__ == module.__name__
        }
        assert defined <= exported, info.name


def test_importing_asyncotp_does_not_import_the_testing_kit_or_its_dependencies() -> None:
    import subprocess
    import sys

    code = (
        "import sys, asyncotp; "
        "print(sorted(m for m in ('asyncotp.testing', 'hypothesis', 'pytest', 'uvicorn', "
        "'httpx') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
