"""The check that a behaviour's callbacks are async, made at the class statement.

A ``def handle_call`` (without ``async``) in a ``GenServer`` subclass would
otherwise be found only when the first request arrives, and then as a crash
of the server with an error about awaiting a value. ``GenServer`` and
``StateMachine`` call ``check_async_callbacks`` from ``__init_subclass__``,
so the mistake fails where it is written, with the fix in the message.

Which names are callbacks is read off the base class: every method the base
defines with ``async def`` (``init``, ``handle_call``, ``terminate``, ...,
and any callback added later), plus, for a state machine, its
``state_<name>`` functions.
"""

from __future__ import annotations

import functools
import inspect

from .._core import fn_name, is_async_callable


def _signature_hint(base: type, name: str) -> str:
    """``(self, request, caller)``: the parameters of the base's callback."""
    try:
        parameters = list(inspect.signature(getattr(base, name)).parameters.values())
    except (TypeError, ValueError):  # a signature inspect cannot read
        return "(self, ...)"
    names = ["self"]
    for parameter in parameters:
        if parameter.name == "self":
            continue
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            names.append("...")
            break
        names.append(parameter.name)
    return f"({', '.join(names)})"


@functools.cache
def _callbacks_of(base: type) -> frozenset[str]:
    """The instance methods ``base`` defines with ``async def`` (classmethods
    such as ``start`` are not callbacks)."""
    names: set[str] = set()
    for klass in base.__mro__:
        for name, value in vars(klass).items():
            if not name.startswith("__") and inspect.iscoroutinefunction(value):
                names.add(name)
    return frozenset(names)


def _problem(value: object) -> str | None:
    """Why ``value`` cannot be an async callback, or None if it can."""
    if isinstance(value, (staticmethod, classmethod)):
        return (
            f"is a {type(value).__name__}; a callback is a plain method of the instance "
            "(remove the decorator)"
        )
    if inspect.isasyncgenfunction(value):
        return (
            "is an async generator function (it contains `yield`); a callback returns "
            "its result, it does not yield values"
        )
    if is_async_callable(value):
        return None
    if callable(value):
        return "is not async"
    return f"is {fn_name(value)}, not a method"


def check_async_callbacks(cls: type, base: type, *, prefix: str | None = None) -> None:
    """Raise ``TypeError`` naming ``cls`` and the callback if ``cls`` defines
    one of ``base``'s async callbacks (or, with ``prefix``, a function whose
    name starts with it) as anything but an async function."""
    callbacks = _callbacks_of(base)
    for name, value in vars(cls).items():
        if name in callbacks:
            hint = _signature_hint(base, name)
        elif prefix is not None and name.startswith(prefix) and inspect.isfunction(value):
            hint = "(self, event_type, event, data)"
        else:
            continue
        problem = _problem(value)
        if problem is not None:
            raise TypeError(
                f"{cls.__qualname__}.{name} {problem}: {base.__name__} awaits its callbacks; "
                f"define it as `async def {name}{hint}: ...`"
            )
