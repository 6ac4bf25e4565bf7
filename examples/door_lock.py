"""The code lock, gen_statem's classic example, as a StateMachine.

    python examples/door_lock.py

A door with a keypad. Two states, one method each
(``CallbackMode.STATE_FUNCTIONS``), with state-enter calls:

    locked  collects the buttons pressed; the right code opens the door.
            A half-typed code is forgotten after 0.3 s without a press
            (an EventTimeout: any event cancels it).
    open    entering it unlocks the door and starts a StateTimeout: the
            door locks itself again after 0.5 s (a state change would
            cancel it). Buttons pressed while it is open are postponed, and
            handled once it is locked again.

``status`` is a call answered with a Reply action. The door tells a
listener (the main actor here) what it does, and the program follows along
by receiving those messages, then stops the door and exits 0.
"""

from __future__ import annotations

import time
from typing import Any

import attrs

from asyncotp import (
    CallbackMode,
    CallEvent,
    EventKind,
    EventTimeout,
    EventType,
    KeepState,
    Pid,
    Postpone,
    Reply,
    StateMachine,
    StateTimeout,
    Transition,
    call,
    cast,
    receive,
    run,
    self_pid,
    send,
    stop,
)

START = time.monotonic()
OPEN_FOR = 0.5  # seconds the door stays open
BUTTON_TIMEOUT = 0.3  # seconds before a half-typed code is forgotten


def say(text: str) -> None:
    print(f"[{time.monotonic() - START:4.2f}s] {text}", flush=True)


@attrs.frozen
class Lock:
    """The door's data: the code, the buttons pressed so far, who listens."""

    code: str
    listener: Pid
    pressed: str = ""


class Door(StateMachine[str, Lock]):
    callback_mode = CallbackMode.STATE_FUNCTIONS
    state_enter = True

    async def init(self, code: str, listener: Pid) -> tuple[str, Lock]:
        return "locked", Lock(code, listener)

    async def state_locked(
        self, event_type: EventKind, event: Any, data: Lock
    ) -> Transition[str, Lock]:
        match event_type, event:
            case EventType.ENTER, _:
                say("door: locked")
                send(data.listener, "locked")
                return "locked", attrs.evolve(data, pressed="")
            case EventType.CAST, ("button", digit):
                pressed = (data.pressed + digit)[-len(data.code) :]
                say(f"door: button {digit!r} -> {pressed!r}")
                if pressed == data.code:
                    return "open", attrs.evolve(data, pressed="")
                return KeepState(
                    attrs.evolve(data, pressed=pressed),
                    actions=EventTimeout(BUTTON_TIMEOUT, "forget"),
                )
            case EventType.EVENT_TIMEOUT, "forget":
                say(f"door: no button for {BUTTON_TIMEOUT} s, forgetting {data.pressed!r}")
                send(data.listener, "forgot")
                return KeepState(attrs.evolve(data, pressed=""))
        return await self.common(event_type, event, "locked", data)

    async def state_open(
        self, event_type: EventKind, event: Any, data: Lock
    ) -> Transition[str, Lock]:
        match event_type, event:
            case EventType.ENTER, _:
                say(f"door: unlocked, open for {OPEN_FOR} s")
                send(data.listener, "opened")
                return KeepState(actions=StateTimeout(OPEN_FOR, "lock"))
            case EventType.STATE_TIMEOUT, "lock":
                say("door: time is up")
                return "locked", data
            case EventType.CAST, ("button", digit):
                say(f"door: button {digit!r} while open: postponed until it locks")
                return KeepState(actions=Postpone())
        return await self.common(event_type, event, "open", data)

    async def common(
        self, event_type: EventKind, event: Any, state: str, data: Lock
    ) -> Transition[str, Lock]:
        """Events handled the same way in every state."""
        if isinstance(event_type, CallEvent) and event == "status":
            return KeepState(actions=Reply(event_type.caller, state))
        say(f"door: ignored {event_type!r} {event!r} in {state}")
        return KeepState()

    async def terminate(self, reason: Any, state: str, data: Lock) -> None:
        say(f"door: stopped in the state {state!r} ({reason})")


async def press(door: Pid, digits: str) -> None:
    for digit in digits:
        cast(door, ("button", digit))


async def main() -> None:
    door = await Door.start("1234", self_pid(), name="door")
    assert await receive() == "locked"

    say("you: type 9, 9 and wait")
    await press(door, "99")
    assert await receive() == "forgot"

    say("you: type a wrong code, 1-2-3-5")
    await press(door, "1235")
    say(f"you: the door says it is {await call(door, 'status')}")

    say("you: type the code, 1-2-3-4")
    await press(door, "1234")
    assert await receive() == "opened"
    say(f"you: the door says it is {await call(door, 'status')}")

    say("you: type 1-2-3-4 again while it is open")
    await press(door, "1234")
    assert await receive() == "locked"
    # The postponed presses were retried in the locked state: open again.
    assert await receive() == "opened"
    assert await receive() == "locked"

    await stop(door)
    say("done: the door is locked and stopped")


if __name__ == "__main__":
    run(main)
