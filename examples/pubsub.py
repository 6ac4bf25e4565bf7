"""Chat rooms on a Registry: names, topics, and entries that vanish with their actor.

    python examples/pubsub.py

The tree (rest_for_one: the registries first, so that users restart after them):

    presence   a Registry with unique keys: each user's server is named
               via("presence", nick), so anyone can reach a user by nick
    rooms      a Registry with duplicate keys: a pub/sub of rooms; a user
               joins a room by registering itself under its name, with its
               nick as the value
    users      a DynamicSupervisor of User servers (temporary children)

What happens:

1. alice, bob and carol connect; alice and bob join #python, carol joins
   #python and #elixir. ``Registry.lookup`` lists who is in a room.
2. alice posts to #python: ``Registry.dispatch`` sends it to every member
   but the sender. bob and carol print it.
3. ``Registry.match`` and ``count_match`` query the members by their nick.
4. bob sends carol a direct message through her via name, without knowing
   her pid.
5. bob crashes: his entries vanish from both registries as he ends, before
   anyone reads his ``Down``; #python now has alice and carol only.
6. A second "alice" cannot connect: the via name is taken (``NameTaken``,
   which the users' supervisor reports as the cause of its ``StartError``).
"""

from __future__ import annotations

import logging
from typing import Any

from asyncotp import (
    Caller,
    DynamicSupervisor,
    GenServer,
    NameTaken,
    Pid,
    Registry,
    Restart,
    StartError,
    Strategy,
    Supervisor,
    call,
    cast,
    monitor,
    receive,
    run,
    send,
    start_child,
    via,
    whereis,
)


def say(text: str) -> None:
    print(text, flush=True)


class User(GenServer):
    """One connected user: joins rooms, prints what it receives."""

    async def init(self, nick: str) -> None:
        self.nick = nick

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        match request:
            case ("join", room):
                Registry.register("rooms", room, self.nick)
                return "ok"
            case ("post", room, text):
                post(room, self.nick, text)
                return "ok"
            case ("dm", to, text):
                return await call(via("presence", to), ("dm_from", self.nick, text))
            case ("dm_from", sender, text):
                say(f"  {self.nick} got a direct message from {sender}: {text}")
                return "delivered"
            case "sync":  # answered once every earlier message is handled
                return "ok"
        raise ValueError(f"unknown request {request!r}")

    async def handle_cast(self, request: Any) -> None:
        if request == "crash":
            raise RuntimeError(f"{self.nick}'s connection dropped")

    async def handle_info(self, message: Any) -> None:
        match message:
            case ("message", room, sender, text):
                say(f"  {self.nick} sees in {room}: <{sender}> {text}")


def post(room: str, sender: str, text: str) -> None:
    """Send a message to every member of ``room`` but its sender."""

    def fan_out(entries: list[tuple[Pid, Any]]) -> None:
        for pid, nick in entries:
            if nick != sender:
                send(pid, ("message", room, sender, text))

    Registry.dispatch("rooms", room, fan_out)


async def connect(nick: str) -> Pid:
    spec = User.child_spec(nick, id=nick, name=via("presence", nick), restart=Restart.TEMPORARY)
    return await start_child("users", spec)


def members(room: str) -> list[str]:
    return sorted(nick for _pid, nick in Registry.lookup("rooms", room))


async def main() -> None:
    logging.basicConfig(level=logging.CRITICAL)  # bob's crash is part of the story
    await Supervisor.start(
        [
            Registry.child_spec("unique", name="presence"),
            Registry.child_spec("duplicate", name="rooms"),
            DynamicSupervisor.child_spec(name="users", id="users"),
        ],
        strategy=Strategy.REST_FOR_ONE,
        name="chat",
    )

    say("1. alice, bob and carol connect and join rooms")
    alice, bob, carol = [await connect(nick) for nick in ("alice", "bob", "carol")]
    for user, room in ((alice, "#python"), (bob, "#python"), (carol, "#python")):
        await call(user, ("join", room))
    await call(carol, ("join", "#elixir"))
    say(f"  #python: {members('#python')}; #elixir: {members('#elixir')}")
    say(f"  users online: {Registry.count('presence')}")

    say("2. alice posts to #python; everyone but alice sees it")
    await call(alice, ("post", "#python", "has anyone tried asyncotp's Registry?"))
    for user in (alice, bob, carol):
        await call(user, "sync")

    say("3. queries on the members' values")
    starts_with_c = Registry.match("rooms", "#python", lambda nick: nick.startswith("c"))
    say(f"  #python members whose nick starts with c: {[nick for _pid, nick in starts_with_c]}")
    say(f"  #python has {Registry.count_match('rooms', '#python')} members")
    say(f"  carol is in {sorted(Registry.keys('rooms', carol))}")

    say("4. bob sends carol a direct message by her name")
    answer = await call(bob, ("dm", "carol", "see you in #elixir"))
    say(f"  -> {answer}")

    say("5. bob crashes: his entries vanish with him")
    ref = monitor(bob)
    cast(via("presence", "bob"), "crash")
    await receive(lambda m: getattr(m, "ref", None) is ref, timeout=5.0)
    say(f"  #python: {members('#python')}; whereis bob: {whereis(via('presence', 'bob'))}")

    say("6. a second alice cannot connect")
    try:
        await connect("alice")
    except StartError as exc:  # the supervisor's: its cause is the start's NameTaken
        taken = exc.__cause__
        assert isinstance(taken, NameTaken)
        say(f"  refused: {taken.name!r} is held by {taken.holder!r} (alice is {alice!r})")
    say("done")


if __name__ == "__main__":
    run(main)
