"""The public API: every name has exactly one public home, and the top level
re-exports them all (statically, so type checkers see them)."""

from __future__ import annotations

import importlib
import subprocess
import sys
import types

import pytest

import asyncotp

NAMESPACES = ("actors", "supervision", "web", "health", "observer", "resilience")


def namespace(name: str) -> types.ModuleType:
    return importlib.import_module(f"asyncotp.{name}")


def public_names(module: types.ModuleType) -> set[str]:
    """What a public module offers: its names without a leading underscore,
    but the subpackages themselves."""
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }


def test_the_top_level_exports_exactly_the_names_of_the_public_namespaces() -> None:
    union: set[str] = set()
    for name in NAMESPACES:
        union |= public_names(namespace(name))
    assert public_names(asyncotp) == union


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


@pytest.mark.parametrize("name", NAMESPACES)
def test_public_classes_and_functions_report_the_public_module(name: str) -> None:
    # asyncotp.CallTimeout in reprs and tracebacks, not asyncotp._core._errors.CallTimeout.
    for public in public_names(namespace(name)):
        value = getattr(asyncotp, public)
        if isinstance(value, type) or callable(value):
            module = getattr(value, "__module__", "asyncotp")
            assert not any(part.startswith("_") for part in module.split(".")), (public, module)


def test_a_public_error_shows_its_public_name() -> None:
    assert repr(asyncotp.CallTimeout("late")) == "CallTimeout('late')"
    assert f"{asyncotp.CallTimeout.__module__}.{asyncotp.CallTimeout.__qualname__}" == (
        "asyncotp.CallTimeout"
    )


def test_importing_asyncotp_does_not_import_the_testing_kit_or_its_dependencies() -> None:
    code = (
        "import sys, asyncotp; "
        "print(sorted(m for m in ('asyncotp.testing', 'hypothesis', 'pytest', 'uvicorn', "
        "'httpx') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
