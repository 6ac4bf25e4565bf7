"""The wire format: what round-trips, what the sender refuses, what the
receiver drops; and the configuration's validation. No server needed."""

from __future__ import annotations

import dataclasses
import enum
import subprocess
import sys
from typing import Any

import attrs
import pytest

from asyncotp import KILLED, NOPROC, NORMAL, Pid, Shutdown
from asyncotp.distribution import NOCONNECTION, BadMessage, NatsCluster, RemoteError
from asyncotp.distribution._codec import Codec


@attrs.frozen
class Order:
    item: str
    qty: int = 1


@attrs.frozen
class Private:
    _secret: int


@dataclasses.dataclass(frozen=True)
class Point:
    x: float
    y: float


class Colour(enum.Enum):
    RED = "red"


def codec() -> Codec:
    def pid_out(pid: Pid) -> list[Any]:
        raise AssertionError("no pids here")

    def pid_in(body: Any) -> Pid:
        raise BadMessage("no pids here")

    return Codec((Order, Private, Point, Colour), pid_out, pid_in)


def roundtrip(value: object) -> object:
    c = codec()
    return c.decode(c.loads(c.dumps({"m": c.encode(value)}))["m"])


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        -(10**30),
        2.5,
        "héllo",
        [1, [2, "x"]],
        (1, (2,), ()),
        {"a": 1, "b": {"c": None}},
        {1: "one", ("t", 2): [3]},
        {"$x": "a key that looks like a tag"},
        frozenset({1, 2}),
        b"\x00\xffbytes",
        Order("tea", 2),
        Private(7),
        Point(1.0, -2.0),
        Colour.RED,
        Shutdown(("detail", 1)),
        RemoteError("builtins.ValueError", "bad"),
    ],
)
def test_values_round_trip_as_equal_values(value: object) -> None:
    assert roundtrip(value) == value


@pytest.mark.parametrize("reason", [NORMAL, KILLED, NOPROC, NOCONNECTION])
def test_standard_reasons_round_trip_as_the_same_objects(reason: object) -> None:
    assert roundtrip(reason) is reason


def test_an_exception_arrives_as_a_remote_error_never_rebuilt() -> None:
    got = roundtrip(ValueError("no"))
    assert got == RemoteError("builtins.ValueError", "ValueError('no')")


def test_a_set_arrives_as_a_frozenset() -> None:
    assert roundtrip({1, 2}) == frozenset({1, 2})


class Unlisted:
    pass


@pytest.mark.parametrize("value", [Unlisted(), object(), lambda: 1, [Order("x"), object()]])
def test_the_sender_refuses_what_cannot_cross_the_wire(value: object) -> None:
    with pytest.raises(TypeError, match="cannot be sent to another node"):
        codec().encode(value)


def test_the_sender_refuses_values_nested_too_deep() -> None:
    deep: list[Any] = []
    for _ in range(100):
        deep = [deep]
    with pytest.raises(TypeError, match="nested deeper"):
        codec().encode(deep)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff",
        b"[1]",
        b"not json",
        b"[" * 100_000,
    ],
)
def test_bytes_that_are_not_a_json_object_are_bad_messages(data: bytes) -> None:
    with pytest.raises(BadMessage):
        codec().loads(data)


@pytest.mark.parametrize(
    "data",
    [
        {"$o": ["os.system", {"command": "true"}]},
        {"$o": [f"{__name__}.Order", {"item": "x", "extra": 1}]},
        {"$o": [f"{__name__}.Order", []]},
        {"$e": [f"{__name__}.Colour", "BLUE"]},
        {"$e": [f"{__name__}.Order", "x"]},
        {"$b": "!!!"},
        {"$r": "sleepy"},
        {"$zz": 1},
        {"$t": 1},
        {"$t": [1], "other": 2},
        {"$p": [1, 2, 3]},
    ],
)
def test_unknown_types_tags_and_shapes_are_bad_messages(data: object) -> None:
    with pytest.raises(BadMessage):
        codec().decode(data)


def test_importing_asyncotp_does_not_import_nats() -> None:
    code = "import sys, asyncotp; print('nats' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"servers": "http://x"}, ValueError),
        ({"servers": []}, TypeError),
        ({"prefix": "a.b"}, ValueError),
        ({"heartbeat_interval": 0}, ValueError),
        ({"heartbeat_interval": 1.0, "heartbeat_window": 1.5}, ValueError),
        ({"types": (1,)}, TypeError),
    ],
)
def test_a_bad_cluster_configuration_is_refused_naming_the_field(
    options: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        NatsCluster(**options)


def test_the_cluster_repr_hides_secrets() -> None:
    assert "hunter2" not in repr(NatsCluster(user="u", password="hunter2", token="hunter2"))


def test_the_servers_may_be_given_by_position_and_the_rest_by_keyword() -> None:
    cluster = NatsCluster("nats://127.0.0.1:4333", prefix="p")
    assert cluster.servers == ("nats://127.0.0.1:4333",)
    assert NatsCluster().servers == ("nats://127.0.0.1:4222",)
