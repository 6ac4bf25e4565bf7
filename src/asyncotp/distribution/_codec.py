"""What crosses the wire: JSON, with tags for the values JSON lacks.

Nothing is unpickled. A message is a JSON object; a value inside it is a
JSON scalar or list, a plain object (string keys not starting with ``$``),
or an object with one ``$`` key that says what it stands for:

========  =====================================================
``$t``    a tuple (its items)
``$d``    a dict whose keys are not all plain strings (pairs)
``$f``    a frozenset (its items; a set arrives as a frozenset)
``$b``    bytes (base64)
``$p``    a pid: ``[node, incarnation, number]``
``$r``    a standard exit reason (``"normal"``, ``"noconnection"``...)
``$s``    ``Shutdown(detail)``
``$x``    an exception, as ``RemoteError(type_name, text)``
``$o``    an instance of a registered type: ``[type name, {fields}]``
``$e``    a member of a registered enum: ``[type name, member name]``
========  =====================================================

A registered type is an attrs class or a dataclass (rebuilt with
``cls(**fields)``) or an enum. Anything else raises ``TypeError`` at the
sender, and a node that meets a tag, a type or a shape it does not know
drops the message as malformed (``BadMessage``).
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import json
from collections.abc import Callable, Iterable
from typing import Any, Final

import attrs

from .._core import ExitReason, Pid, Shutdown, safe_repr

MAX_DEPTH: Final = 64
"""Nesting deeper than this is refused both ways."""

Json = Any


class BadMessage(ValueError):
    """A message that does not decode: dropped, counted and logged."""


class RemoteError(Exception):
    """An exception that crossed the wire: its type's name and its text.

    A remote actor's crash reason, or the error a remote server answered a
    call with (``Caller.fail``), arrives as one: the original class is not
    rebuilt (it may not exist here, and building it would run its code).
    """

    def __init__(self, type_name: str, text: str) -> None:
        super().__init__(type_name, text)
        self.type_name = type_name
        self.text = text

    def __repr__(self) -> str:
        return f"RemoteError({self.type_name!r}, {self.text!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is RemoteError
            and other.type_name == self.type_name
            and other.text == self.text
        )

    def __hash__(self) -> int:
        return hash((self.type_name, self.text))


def type_name(cls: type) -> str:
    """The wire name of a registered class: its module and qualified name."""
    return f"{cls.__module__}.{cls.__qualname__}"


def _fields_of(cls: type) -> tuple[tuple[str, str], ...]:
    """(attribute, constructor keyword) for each field of an attrs class or dataclass."""
    if attrs.has(cls):
        return tuple((f.name, f.alias or f.name) for f in attrs.fields(cls) if f.init)
    if dataclasses.is_dataclass(cls):
        return tuple((f.name, f.name) for f in dataclasses.fields(cls) if f.init)
    raise TypeError(
        f"NatsCluster(types=...): {cls.__qualname__} is neither an attrs class, a dataclass "
        "nor an enum; only those can be sent to other nodes"
    )


class Codec:
    """Encodes and decodes messages for one node; ``pid_out``/``pid_in``
    turn pids into ``[node, incarnation, number]`` and back."""

    def __init__(
        self,
        types: Iterable[type],
        pid_out: Callable[[Pid], list[Json]],
        pid_in: Callable[[Json], Pid],
    ) -> None:
        self._by_type: dict[type, str] = {}
        self._by_name: dict[str, type] = {}
        self._fields: dict[type, tuple[tuple[str, str], ...]] = {}
        for cls in types:
            name = type_name(cls)
            if not issubclass(cls, enum.Enum):
                self._fields[cls] = _fields_of(cls)
            self._by_type[cls] = name
            self._by_name[name] = cls
        self._pid_out = pid_out
        self._pid_in = pid_in

    def dumps(self, envelope: dict[str, Json]) -> bytes:
        """The bytes of an envelope whose values are already encoded."""
        return json.dumps(envelope, separators=(",", ":")).encode()

    def loads(self, data: bytes) -> dict[str, Json]:
        """The envelope in ``data``; ``BadMessage`` if it is not a JSON object."""
        envelope = _parse(data)
        if type(envelope) is not dict:
            raise BadMessage("not a JSON object")
        return envelope

    def loads_batch(self, data: bytes) -> list[Json]:
        """The envelopes in ``data``: one JSON object, or a non-empty list of
        them (a batch; its items are checked by the caller, one by one)."""
        parsed = _parse(data)
        if type(parsed) is dict:
            return [parsed]
        if type(parsed) is not list or not parsed:
            raise BadMessage("neither a JSON object nor a non-empty list of them")
        return parsed

    # -- values ---------------------------------------------------------------

    def encode(self, value: object, depth: int = 0) -> Json:
        """``value`` as JSON data; ``TypeError`` naming what cannot cross the wire."""
        kind = type(value)
        if value is None or kind is bool or kind is int or kind is str or kind is float:
            return value
        if depth > MAX_DEPTH:
            raise TypeError(f"a value nested deeper than {MAX_DEPTH} levels cannot be sent")
        depth += 1
        if kind is list:
            return [self.encode(item, depth) for item in value]  # type: ignore[attr-defined]
        if kind is tuple:
            return {"$t": [self.encode(item, depth) for item in value]}  # type: ignore[attr-defined]
        if kind is dict:
            items: dict[Any, Any] = value  # type: ignore[assignment]
            if all(type(k) is str and not k.startswith("$") for k in items):
                return {k: self.encode(v, depth) for k, v in items.items()}
            return {
                "$d": [[self.encode(k, depth), self.encode(v, depth)] for k, v in items.items()]
            }
        if kind is set or kind is frozenset:
            return {"$f": [self.encode(item, depth) for item in value]}  # type: ignore[attr-defined]
        if kind is bytes:
            return {"$b": base64.b64encode(value).decode()}  # type: ignore[arg-type]
        if kind is Pid:
            return {"$p": self._pid_out(value)}  # type: ignore[arg-type]
        if kind is ExitReason:
            return {"$r": value.value}  # type: ignore[attr-defined]
        if kind is Shutdown:
            return {"$s": self.encode(value.detail, depth)}  # type: ignore[attr-defined]
        name = self._by_type.get(kind)
        if name is not None:
            if isinstance(value, enum.Enum):
                return {"$e": [name, value.name]}
            fields = {
                key: self.encode(getattr(value, attr), depth) for attr, key in self._fields[kind]
            }
            return {"$o": [name, fields]}
        if isinstance(value, BaseException):
            if kind is RemoteError:
                return {"$x": [value.type_name, value.text]}  # type: ignore[attr-defined]
            return {"$x": [type_name(kind), safe_repr(value)]}
        raise TypeError(
            f"{safe_repr(value)} (a {kind.__qualname__}) cannot be sent to another node: "
            "send built-in values (None, bool, int, float, str, bytes, list, tuple, dict, "
            "set), pids, or instances of the attrs classes, dataclasses and enums listed "
            "in NatsCluster(types=...)"
        )

    def decode(self, data: Json, depth: int = 0) -> object:
        """The value ``data`` stands for; ``BadMessage`` for anything unknown."""
        kind = type(data)
        if data is None or kind is bool or kind is int or kind is str or kind is float:
            return data
        if depth > MAX_DEPTH:
            raise BadMessage(f"nested deeper than {MAX_DEPTH} levels")
        depth += 1
        if kind is list:
            return [self.decode(item, depth) for item in data]
        if kind is not dict:
            raise BadMessage(f"unexpected JSON value of type {kind.__name__}")
        if len(data) != 1:
            return {k: self.decode(v, depth) for k, v in data.items() if self._plain(k)}
        ((tag, body),) = data.items()
        if not tag.startswith("$"):
            return {tag: self.decode(body, depth)}
        return self._tagged(tag, body, depth)

    @staticmethod
    def _plain(key: str) -> bool:
        if key.startswith("$"):
            raise BadMessage(f"tag {key!r} in an object of several keys")
        return True

    def _tagged(self, tag: str, body: Json, depth: int) -> object:
        try:
            if tag == "$t":
                return tuple(self.decode(item, depth) for item in _list(body))
            if tag == "$d":
                pairs = [(self.decode(k, depth), self.decode(v, depth)) for k, v in _list(body)]
                return dict(pairs)
            if tag == "$f":
                return frozenset(self.decode(item, depth) for item in _list(body))
            if tag == "$b":
                return base64.b64decode(_str(body), validate=True)
            if tag == "$p":
                return self._pid_in(body)
            if tag == "$r":
                return ExitReason(_str(body))
            if tag == "$s":
                return Shutdown(self.decode(body, depth))
            if tag == "$x":
                name, text = _list(body)
                return RemoteError(_str(name), _str(text))
            if tag == "$e":
                name, member = _list(body)
                cls = self._registered(name)
                if not issubclass(cls, enum.Enum):
                    raise BadMessage(f"{name!r} is not an enum")
                return cls[_str(member)]
            if tag == "$o":
                name, fields = _list(body)
                cls = self._registered(name)
                if issubclass(cls, enum.Enum) or type(fields) is not dict:
                    raise BadMessage(f"bad fields for {name!r}")
                return cls(**{_str(k): self.decode(v, depth) for k, v in fields.items()})
        except BadMessage:
            raise
        except (TypeError, ValueError, KeyError, LookupError) as exc:
            # A wrong shape, a missing or unexpected field, a validator refusing it.
            raise BadMessage(f"bad {tag} value: {type(exc).__name__}") from None
        raise BadMessage(f"unknown tag {tag!r}")

    def _registered(self, name: object) -> type:
        cls = self._by_name.get(name) if type(name) is str else None
        if cls is None:
            raise BadMessage(f"type {safe_repr(name)} is not in NatsCluster(types=...)")
        return cls


def _parse(data: bytes) -> Json:
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise BadMessage(f"not JSON ({type(exc).__name__})") from None


def _list(value: Json) -> list[Json]:
    if type(value) is not list:
        raise BadMessage("expected a list")
    return value


def _str(value: Json) -> str:
    if type(value) is not str:
        raise BadMessage("expected a string")
    return value
