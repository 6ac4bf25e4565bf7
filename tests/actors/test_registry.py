"""Registry: unique and duplicate keys, entries owned by the registering actor
and gone when it ends, pub/sub, and the errors a user meets."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from asyncotp import (
    KILL,
    KILLED,
    GenServer,
    NameTaken,
    Node,
    NoProcess,
    NotAnActorError,
    Pid,
    Registry,
    RegistryEntry,
    RegistryEvent,
    Strategy,
    Supervisor,
    WrongThreadError,
    call,
    cast,
    is_alive,
    process_info,
    receive,
    self_pid,
    send_exit,
    spawn,
    stop,
    which_children,
)
from tests.helpers import in_actor, wait, watch


class Member(GenServer):
    """An actor that registers itself on request and reports what it receives."""

    async def init(self, registry: Pid | str, inbox: asyncio.Queue[object] | None = None) -> None:
        self.registry = registry
        self.inbox = inbox

    async def handle_call(self, request: Any, caller: Any) -> Any:
        match request:
            case ("register", key, value):
                try:
                    Registry.register(self.registry, key, value)
                except NameTaken as exc:
                    return ("taken", exc.holder)
                return "ok"
            case ("unregister", key):
                Registry.unregister(self.registry, key)
                return "ok"
            case ("unregister_match", key, pattern):
                Registry.unregister_match(self.registry, key, pattern)
                return "ok"
            case ("update", key, fn):
                return Registry.update_value(self.registry, key, fn)
            case "crash":
                raise RuntimeError("member crashed on purpose")
        raise ValueError(request)

    async def handle_info(self, message: Any) -> None:
        if self.inbox is not None:
            self.inbox.put_nowait(message)


async def member(
    registry: Pid | str, *keys: object, inbox: asyncio.Queue[object] | None = None
) -> Pid:
    pid = await Member.start(registry, inbox)
    for key in keys:
        assert await call(pid, ("register", key, f"v-{key}")) == "ok"
    return pid


# -- unique keys ---------------------------------------------------------------


async def test_lookup_finds_the_actor_that_registered_a_unique_key(node: Node) -> None:
    reg = await Registry.start("unique", name="reg")
    pid = await Member.start("reg")
    assert await call(pid, ("register", "alice", {"age": 3})) == "ok"
    assert Registry.lookup("reg", "alice") == [(pid, {"age": 3})]
    assert Registry.lookup(reg, "alice") == [(pid, {"age": 3})]
    assert Registry.lookup("reg", "bob") == []
    assert Registry.kind("reg") == "unique"


async def test_a_taken_unique_key_raises_name_taken_naming_the_holder(node: Node) -> None:
    await Registry.start("unique", name="reg")
    first = await member("reg", "alice")
    second = await Member.start("reg")
    assert await call(second, ("register", "alice", 1)) == ("taken", first)
    assert await call(first, ("register", "alice", 1)) == ("taken", first)
    assert Registry.lookup("reg", "alice") == [(first, "v-alice")]


async def test_entries_are_gone_once_the_owner_ends_before_its_down_is_read(node: Node) -> None:
    await Registry.start("unique", name="reg")
    pid = await member("reg", "a", "b")
    ended = await watch(pid)
    cast(pid, "crash")
    assert isinstance(await wait(ended), RuntimeError)
    assert Registry.lookup("reg", "a") == []
    assert Registry.count("reg") == 0
    assert Registry.keys("reg", pid) == []


async def test_a_key_freed_by_an_ended_owner_can_be_taken_again(node: Node) -> None:
    await Registry.start("unique", name="reg")
    first = await member("reg", "slot")
    await stop(first)
    second = await member("reg", "slot")
    assert Registry.lookup("reg", "slot") == [(second, "v-slot")]


async def test_update_value_changes_only_the_callers_own_entry(node: Node) -> None:
    await Registry.start("unique", name="reg")
    owner = await Member.start("reg")
    other = await Member.start("reg")
    assert await call(owner, ("register", "n", 1)) == "ok"
    assert await call(owner, ("update", "n", lambda v: v + 1)) == (2, 1)
    assert await call(other, ("update", "n", lambda v: v + 100)) is None
    assert Registry.lookup("reg", "n") == [(owner, 2)]


async def test_update_value_on_a_duplicate_registry_is_a_value_error(node: Node) -> None:
    await Registry.start("duplicate", name="topics")

    async def body() -> None:
        with pytest.raises(ValueError, match="keys='unique'"):
            Registry.update_value("topics", "t", lambda v: v)

    await in_actor(body)


# -- duplicate keys --------------------------------------------------------------


async def test_duplicate_keys_keep_every_entry_in_registration_order(node: Node) -> None:
    await Registry.start("duplicate", name="topics")
    a = await Member.start("topics")
    b = await Member.start("topics")
    assert await call(a, ("register", "news", 1)) == "ok"
    assert await call(b, ("register", "news", 2)) == "ok"
    assert await call(a, ("register", "news", 3)) == "ok"
    assert Registry.lookup("topics", "news") == [(a, 1), (a, 3), (b, 2)]
    assert Registry.count("topics") == 3
    assert Registry.count_match("topics", "news") == 3
    assert Registry.count_match("topics", "news", lambda v: v > 1) == 2
    assert Registry.keys("topics", a) == ["news", "news"]
    assert Registry.values("topics", "news", a) == [1, 3]


async def test_unregister_removes_only_the_callers_entries_under_that_key(node: Node) -> None:
    await Registry.start("duplicate", name="topics")
    a = await member("topics", "x", "y")
    b = await member("topics", "x")
    assert await call(a, ("unregister", "x")) == "ok"
    assert Registry.lookup("topics", "x") == [(b, "v-x")]
    assert Registry.keys("topics", a) == ["y"]


async def test_unregister_match_removes_the_callers_entries_the_pattern_accepts(
    node: Node,
) -> None:
    await Registry.start("duplicate", name="topics")
    a = await Member.start("topics")
    for value in (1, 2, 3, 4):
        assert await call(a, ("register", "n", value)) == "ok"
    assert await call(a, ("unregister_match", "n", lambda v: v % 2 == 0)) == "ok"
    assert Registry.values("topics", "n", a) == [1, 3]
    assert Registry.count("topics") == 2


async def test_an_owner_is_linked_to_the_registry_until_its_last_entry_goes(node: Node) -> None:
    reg = await Registry.start("duplicate", name="topics")
    a = await member("topics", "x", "y")
    info = process_info(a)
    assert info is not None
    assert reg in info.links
    await call(a, ("unregister", "x"))
    info = process_info(a)
    assert info is not None
    assert reg in info.links
    await call(a, ("unregister", "y"))
    info = process_info(a)
    assert info is not None
    assert reg not in info.links


async def test_unregistering_leaves_a_link_the_owner_had_made_itself(node: Node) -> None:
    async def body() -> bool:
        reg = await Registry.start("duplicate", link=True)  # the caller is its parent
        Registry.register(reg, "x")
        Registry.unregister(reg, "x")
        info = process_info(reg)
        assert info is not None
        return self_pid() in info.links

    assert await in_actor(body) is True


async def test_a_registry_crash_takes_its_owners_along(node: Node) -> None:
    reg = await Registry.start("duplicate", name="topics")
    a = await member("topics", "x")
    bystander = await Member.start("topics")
    ended = await watch(a)
    await stop(reg, RuntimeError("registry crashed"))
    reason = await wait(ended)
    assert isinstance(reason, RuntimeError)
    assert is_alive(bystander)
    with pytest.raises(NoProcess, match="not alive"):
        Registry.lookup(reg, "x")
    with pytest.raises(NoProcess, match="topics"):
        Registry.lookup("topics", "x")


# -- reads -----------------------------------------------------------------------


async def test_match_select_and_count_select_take_predicates(node: Node) -> None:
    await Registry.start("duplicate", name="topics")
    a = await Member.start("topics")
    b = await Member.start("topics")
    await call(a, ("register", "orders", {"region": "eu"}))
    await call(b, ("register", "orders", {"region": "us"}))
    await call(b, ("register", "audit", {"region": "eu"}))
    assert Registry.match("topics", "orders", lambda v: v["region"] == "eu") == [
        (a, {"region": "eu"})
    ]
    everything = Registry.select("topics")
    assert everything == [
        RegistryEntry("orders", a, {"region": "eu"}),
        RegistryEntry("orders", b, {"region": "us"}),
        RegistryEntry("audit", b, {"region": "eu"}),
    ]
    assert [e.key for e in Registry.select("topics", lambda e: e.pid is b)] == ["orders", "audit"]
    assert Registry.count_select("topics", lambda e: e.value["region"] == "eu") == 2


async def test_lookup_gives_a_list_of_its_own_that_cannot_change_the_table(node: Node) -> None:
    await Registry.start("duplicate", name="topics")
    a = await member("topics", "x")
    entries = Registry.lookup("topics", "x")
    entries.clear()
    assert Registry.lookup("topics", "x") == [(a, "v-x")]


# -- pub/sub ----------------------------------------------------------------------


async def test_dispatch_calls_fn_once_with_every_entry_and_not_for_an_empty_key(
    node: Node,
) -> None:
    await Registry.start("duplicate", name="topics")
    a = await member("topics", "news")
    b = await member("topics", "news")
    seen: list[list[tuple[Pid, Any]]] = []
    Registry.dispatch("topics", "news", seen.append)
    Registry.dispatch("topics", "sports", seen.append)
    assert seen == [[(a, "v-news"), (b, "v-news")]]


async def test_publish_sends_once_to_each_subscriber_and_counts_them(node: Node) -> None:
    await Registry.start("duplicate", name="topics")
    inbox: asyncio.Queue[object] = asyncio.Queue()
    a = await member("topics", inbox=inbox)
    await call(a, ("register", "news", 1))
    await call(a, ("register", "news", 2))
    b = await member("topics", "news", inbox=inbox)
    await member("topics", "sports", inbox=inbox)
    assert Registry.publish("topics", "news", "hello") == 2
    assert [await wait(inbox.get()), await wait(inbox.get())] == ["hello", "hello"]
    assert inbox.empty()
    assert Registry.publish("topics", "nobody", "hello") == 0
    assert Registry.lookup("topics", "news")[-1][0] is b


async def test_a_full_subscriber_is_skipped_and_the_others_still_get_the_message(
    node: Node,
) -> None:
    await Registry.start("duplicate", name="topics")
    got: asyncio.Future[object] = asyncio.get_running_loop().create_future()

    async def stuck(ready: asyncio.Future[None]) -> None:
        Registry.register("topics", "news")
        ready.set_result(None)
        await asyncio.Event().wait()  # never reads its mailbox

    async def reader(ready: asyncio.Future[None]) -> None:
        Registry.register("topics", "news")
        ready.set_result(None)
        got.set_result(await receive())

    loop = asyncio.get_running_loop()
    ready = [loop.create_future(), loop.create_future()]
    full = spawn(stuck, ready[0], mailbox_size=1)
    spawn(reader, ready[1])
    await wait(asyncio.gather(*ready))
    assert Registry.publish("topics", "news", "first") == 2
    assert Registry.publish("topics", "news", "second") == 1  # the stuck one is full
    assert await wait(got) == "first"
    info = process_info(full)
    assert info is not None
    assert info.rejected == 1


async def test_a_subscriber_that_ended_gets_nothing_more(node: Node) -> None:
    await Registry.start("duplicate", name="topics")
    a = await member("topics", "news")
    await stop(a)
    assert Registry.publish("topics", "news", "late") == 0


async def test_listeners_hear_of_explicit_registers_and_unregisters_only(node: Node) -> None:
    heard: asyncio.Queue[object] = asyncio.Queue()
    listener = await member("none", inbox=heard)
    reg = await Registry.start("duplicate", name="topics", listeners=[listener])
    a = await Member.start("topics")
    await call(a, ("register", "news", 1))
    assert await wait(heard.get()) == RegistryEvent("register", reg, "news", a, 1)
    await call(a, ("unregister", "news"))
    assert await wait(heard.get()) == RegistryEvent("unregister", reg, "news", a, None)
    await call(a, ("register", "news", 2))
    event = await wait(heard.get())
    assert isinstance(event, RegistryEvent)
    assert event.kind == "register"
    await stop(a)  # an end is not announced: a listener that cares monitors the owner
    assert Registry.publish("topics", "news", "x") == 0
    assert heard.empty()


async def test_listeners_must_be_pids_or_names(node: Node) -> None:
    with pytest.raises(TypeError, match="every listener must be a Pid or a registered name"):
        await Registry.start("unique", listeners=[3])  # type: ignore[list-item]


# -- metadata ----------------------------------------------------------------------


async def test_meta_starts_from_the_start_option_and_can_be_changed(node: Node) -> None:
    await Registry.start("unique", name="reg", meta={"owner": "ops"})
    assert Registry.meta("reg", "owner") == "ops"
    Registry.put_meta("reg", "shard", 3)
    assert Registry.meta("reg", "shard") == 3
    Registry.delete_meta("reg", "shard")
    assert Registry.meta("reg", "shard", "unset") == "unset"


# -- errors ------------------------------------------------------------------------


async def test_register_from_a_plain_task_is_not_an_actor_error(node: Node) -> None:
    await Registry.start("unique", name="reg")
    with pytest.raises(NotAnActorError, match=r"Registry\.register"):
        Registry.register("reg", "k")


async def test_an_unknown_registry_or_a_pid_that_is_no_registry_is_no_process(
    node: Node,
) -> None:
    with pytest.raises(
        NoProcess, match=r"Registry\.lookup: no Registry is registered as 'nope'.*Registry\.start"
    ):
        Registry.lookup("nope", "k")
    other = await Member.start("reg")
    with pytest.raises(NoProcess, match="is not a Registry"):
        Registry.lookup(other, "k")


@pytest.mark.parametrize("keys", ["both", None, 1])
async def test_start_refuses_keys_other_than_unique_or_duplicate(node: Node, keys: object) -> None:
    with pytest.raises(ValueError, match="keys must be 'unique' or 'duplicate'"):
        await Registry.start(keys)  # type: ignore[arg-type]


async def test_predicates_that_are_not_callable_fail_at_the_call_site(node: Node) -> None:
    await Registry.start("duplicate", name="topics")
    with pytest.raises(TypeError, match=r"Registry\.match: pattern must be a callable"):
        Registry.match("topics", "k", 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"Registry\.select: where must be a callable"):
        Registry.select("topics", "all")  # type: ignore[arg-type]


async def test_functions_called_from_another_thread_raise_at_once(node: Node) -> None:
    reg = await Registry.start("unique")

    def off_thread() -> None:
        with pytest.raises(WrongThreadError):
            Registry.lookup(reg, "k")

    await asyncio.to_thread(off_thread)


# -- supervision ---------------------------------------------------------------------


async def test_child_spec_ids_the_registry_by_its_name_and_restarts_it_empty(
    node: Node,
) -> None:
    sup = await Supervisor.start(
        [Registry.child_spec("unique", name="reg"), Member.child_spec("reg", id="m")],
        strategy=Strategy.REST_FOR_ONE,
    )
    children = await which_children(sup)
    assert [c.id for c in children] == ["reg", "m"]
    old_member = children[1].pid
    assert old_member is not None
    await call(old_member, ("register", "k", 1))
    old_reg = children[0].pid
    assert old_reg is not None
    ended = await watch(old_member)
    send_exit(old_reg, KILL)
    assert await wait(ended) is KILLED
    new_reg, new_member = [c.pid for c in await which_children(sup)]
    assert new_reg is not None
    assert new_reg is not old_reg
    assert new_member is not old_member
    assert Registry.count("reg") == 0
    assert Registry.lookup(new_reg, "k") == []
