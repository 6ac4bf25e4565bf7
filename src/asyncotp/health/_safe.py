"""Showing user objects without trusting them.

Health and resilience put user objects (requests, jobs, keys, results,
errors, exit reasons) into error messages, logs and reports. A ``__repr__``
or ``__str__`` that raises must neither take the component down nor replace
the error its caller should get: ``safe_repr`` and ``safe_str`` show such an
object as a placeholder instead. Resilience imports them from here (health is
the lower layer); the core is getting a shared one, which will replace them.
"""

from __future__ import annotations


def safe_repr(value: object) -> str:
    """``repr(value)``, or a placeholder naming its type if that raises."""
    try:
        return repr(value)
    except Exception as exc:  # noqa: BLE001 - any error of a user's __repr__
        return _placeholder(value, "__repr__", exc)


def safe_str(value: object) -> str:
    """``str(value)``, or a placeholder naming its type if that raises."""
    try:
        return str(value)
    except Exception as exc:  # noqa: BLE001 - any error of a user's __str__
        return _placeholder(value, "__str__", exc)


def _placeholder(value: object, method: str, error: Exception) -> str:
    try:
        cls = type(value)
        return (
            f"<{cls.__module__}.{cls.__qualname__} object at {id(value):#x}; its {method} "
            f"raised {type(error).__qualname__}>"
        )
    except Exception:  # noqa: BLE001 - a metaclass that misbehaves too
        return f"<unprintable object at {id(value):#x}>"
