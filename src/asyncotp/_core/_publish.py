"""Public names show their public module.

Classes and functions are defined in private modules (``asyncotp._core._errors``),
but users meet them as ``asyncotp.CallTimeout``: ``publish`` sets their
``__module__`` to the public namespace, so reprs, tracebacks, pickles and
documentation name the spelling users import.
"""

from __future__ import annotations

from collections.abc import Iterable


def publish(objects: Iterable[object], module: str) -> None:
    """Set ``__module__`` to ``module`` on each class and function of
    ``objects`` defined in a private module of asyncotp."""
    for obj in objects:
        if not isinstance(obj, type) and not callable(obj):
            continue
        current = getattr(obj, "__module__", None)
        if not isinstance(current, str) or not current.startswith("asyncotp."):
            continue
        if any(part.startswith("_") for part in current.split(".")):
            try:
                obj.__module__ = module
            except (AttributeError, TypeError):  # a builtin-like object: left as it is
                continue
