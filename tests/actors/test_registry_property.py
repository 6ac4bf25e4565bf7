"""Properties of the Registry: whatever actors register, unregister and end
(normally, by a crash, by a kill), the table holds exactly the entries of the
actors still alive, as a trivial model says; and so do via names, whatever
servers start under them and end."""

from __future__ import annotations

import logging
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import asyncotp
from asyncotp import (
    KILL,
    Down,
    GenServer,
    NameTaken,
    Pid,
    Registry,
    call,
    cast,
    monitor,
    receive,
    send_exit,
    stop,
    via,
    whereis,
)


class Owner(GenServer):
    """Registers and unregisters itself on request; crashes on request."""

    async def init(self, registry: Pid) -> None:
        self.registry = registry

    async def handle_call(self, request: Any, caller: Any) -> Any:
        op, key, value = request
        if op == "register":
            try:
                Registry.register(self.registry, key, value)
            except NameTaken:
                return "taken"
            return "ok"
        Registry.unregister(self.registry, key)
        return "ok"

    async def handle_cast(self, request: Any) -> None:
        raise RuntimeError("crash on request")


Step = tuple[str, int, int, int]
keys = st.integers(0, 3)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("spawn"), st.just(0), st.just(0), st.just(0)),
        st.tuples(st.just("register"), st.integers(0, 7), keys, st.integers(0, 2)),
        st.tuples(st.just("unregister"), st.integers(0, 7), keys, st.just(0)),
        st.tuples(st.sampled_from(["normal", "crash", "kill"]), st.integers(0, 7), keys, keys),
    ),
    max_size=30,
)


async def _end(pid: Pid, how: str) -> None:
    ref = monitor(pid)
    if how == "normal":
        await stop(pid)
    elif how == "crash":
        cast(pid, "crash")
    else:
        send_exit(pid, KILL)
    await receive(lambda m: type(m) is Down and m.ref is ref, timeout=5.0)


async def _scenario(kind: Literal["unique", "duplicate"], script: list[Step]) -> None:
    registry = await Registry.start(kind)
    owners: list[Pid] = []
    model: dict[Pid, list[tuple[int, int]]] = {}
    ended: list[Pid] = []
    for op, which, key, value in script:
        if op == "spawn" or not owners:
            pid = await Owner.start(registry)
            owners.append(pid)
            model[pid] = []
            continue
        pid = owners[which % len(owners)]
        if pid not in model:
            continue  # ended already
        if op == "register":
            free = not any(k == key for held in model.values() for k, _v in held)
            answer = await call(pid, ("register", key, value))
            if kind == "duplicate" or free:
                assert answer == "ok"
                model[pid].append((key, value))
            else:
                assert answer == "taken"
        elif op == "unregister":
            await call(pid, ("unregister", key, None))
            model[pid] = [(k, v) for k, v in model[pid] if k != key]
        else:
            await _end(pid, op)
            del model[pid]
            ended.append(pid)
        expected = sorted((p.number, k, v) for p, held in model.items() for k, v in held)
        actual = sorted((e.pid.number, e.key, e.value) for e in Registry.select(registry))
        assert actual == expected
        assert Registry.count(registry) == len(expected)
        for gone in ended:
            assert Registry.keys(registry, gone) == []


@settings(max_examples=40, deadline=None)
@given(kind=st.sampled_from(["unique", "duplicate"]), script=steps)
def test_entries_are_exactly_those_of_live_owners_after_any_registrations_and_exits(
    kind: Literal["unique", "duplicate"], script: list[Step]
) -> None:
    # The crashes are meant: keep their reports out of pytest's log capture.
    logger = logging.getLogger("asyncotp")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        asyncotp.run(_scenario, kind, script)
    finally:
        logger.setLevel(level)


class Named(GenServer):
    """A server that only lives under its via name."""

    async def handle_cast(self, request: Any) -> None:
        raise RuntimeError("crash on request")


via_steps = st.lists(
    st.tuples(st.sampled_from(["start", "start", "normal", "crash", "kill"]), keys), max_size=25
)


async def _via_scenario(script: list[tuple[str, int]]) -> None:
    registry = await Registry.start("unique", name="names")
    model: dict[int, Pid] = {}
    for op, key in script:
        name = via("names", key)
        if op == "start" and key in model:
            with pytest.raises(NameTaken) as taken:
                await Named.start(name=name)
            assert taken.value.holder is model[key]
        elif op == "start":
            model[key] = await Named.start(name=name)
        elif key in model:
            await _end(model.pop(key), op)
        for k in range(4):
            assert whereis(via("names", k)) is model.get(k)
        assert {e.key: e.pid for e in Registry.select(registry)} == model
    del registry


@settings(max_examples=40, deadline=None)
@given(script=via_steps)
def test_via_names_are_held_exactly_by_live_servers_after_any_starts_and_exits(
    script: list[tuple[str, int]],
) -> None:
    logger = logging.getLogger("asyncotp")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        asyncotp.run(_via_scenario, script)
    finally:
        logger.setLevel(level)
