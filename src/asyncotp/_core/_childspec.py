"""Child specifications: pure values shared by behaviours and supervisors.

They live outside ``asyncotp.supervision`` so that ``GenServer.child_spec``
can build one without the actor side importing the supervision side.
"""

from __future__ import annotations

import enum
import inspect
import math
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Final, TypeAlias

import attrs

from ._pid import Pid
from ._safe import safe_repr
from ._validate import MAX_SECONDS, async_entry, check_seconds


class Restart(enum.Enum):
    """When a supervisor restarts a child."""

    PERMANENT = "permanent"
    """Always restarted."""
    TRANSIENT = "transient"
    """Restarted only after an abnormal end (not NORMAL, SHUTDOWN, Shutdown(...))."""
    TEMPORARY = "temporary"
    """Never restarted, and forgotten when it ends."""

    def __repr__(self) -> str:
        return f"Restart.{self.name}"


class Strategy(enum.Enum):
    """Which children a supervisor restarts when one of them fails."""

    ONE_FOR_ONE = "one_for_one"
    """Restart the failed child only."""
    ONE_FOR_ALL = "one_for_all"
    """Stop all the others (reverse start order) and restart all (start order)."""
    REST_FOR_ONE = "rest_for_one"
    """Stop the children started after it (reverse order), restart it and them."""

    def __repr__(self) -> str:
        return f"Strategy.{self.name}"


class ChildType(enum.Enum):
    """Whether a child is a worker or a supervisor (its default shutdown differs)."""

    WORKER = "worker"
    SUPERVISOR = "supervisor"

    def __repr__(self) -> str:
        return f"ChildType.{self.name}"


class ShutdownMode(enum.Enum):
    """The two shutdown settings that are not a number of seconds."""

    BRUTAL_KILL = "brutal_kill"
    """Stop the child with ``KILL`` at once."""
    INFINITY = "infinity"
    """Wait for the child however long it takes (the default for supervisors)."""

    def __repr__(self) -> str:
        return self.name


BRUTAL_KILL: Final = ShutdownMode.BRUTAL_KILL
INFINITY: Final = ShutdownMode.INFINITY

ShutdownSetting: TypeAlias = "float | ShutdownMode"
StartFn: TypeAlias = "Callable[[], Awaitable[Pid | tuple[Pid, Any] | None]]"
"""A child's start function: returns its pid, a ``(pid, info)`` pair (OTP's
``{ok, Pid, Info}``), or None (``ignore``)."""


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _fits_float(value: float) -> bool:
    """Whether a number converts to a float (an int can be too large to)."""
    try:
        float(value)
    except OverflowError:
        return False
    return True


_NO_LIMIT_FIELDS: Final = frozenset({"max", "reset_after"})
"""The Backoff fields where math.inf means "no limit"."""


@attrs.frozen
class Backoff:
    """A growing delay before a child is restarted (beyond OTP).

    The first restart waits ``initial`` seconds, each next one ``multiplier``
    times longer, up to ``max``; each delay is spread by +/- ``jitter`` (a
    fraction). After ``reset_after`` seconds without a crash the delay starts
    over from ``initial``. While a child waits, ``which_children`` shows it as
    not running. Backoff does not change restart intensity: every restart
    still counts. ``max`` and ``reset_after`` may be ``math.inf`` (no cap on
    the delay; never start over); the other fields are finite.
    """

    initial: float = 0.1
    max: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.1
    reset_after: float = 60.0

    def __attrs_post_init__(self) -> None:
        for field in ("initial", "max", "multiplier", "jitter", "reset_after"):
            value = getattr(self, field)
            if not _number(value) or not value >= 0:  # `not >=` also refuses NaN
                raise ValueError(f"Backoff.{field} must be a number >= 0, not {safe_repr(value)}")
            if not _fits_float(value):
                raise ValueError(
                    f"Backoff.{field} must be a number >= 0 that a float can hold, "
                    f"not {safe_repr(value)}"
                )
            if math.isinf(value) and field not in _NO_LIMIT_FIELDS:
                raise ValueError(
                    f"Backoff.{field} must be finite, not {safe_repr(value)} (only Backoff.max and "
                    "Backoff.reset_after take math.inf, meaning no limit)"
                )
        # Finite times are at most MAX_SECONDS, as every time argument.
        check_seconds(self.initial, "", "Backoff.initial")
        check_seconds(self.max, "", "Backoff.max", no_limit=True)
        check_seconds(self.reset_after, "", "Backoff.reset_after", no_limit=True)
        if self.multiplier < 1:
            raise ValueError(f"Backoff.multiplier must be >= 1, not {safe_repr(self.multiplier)}")
        if self.jitter > 1:
            raise ValueError(f"Backoff.jitter must be a fraction in [0, 1], not {self.jitter!r}")
        if self.max < self.initial:
            raise ValueError(
                f"Backoff.max ({self.max!r}) must be >= Backoff.initial ({self.initial!r})"
            )

    def delay(self, attempt: int, unit_random: float) -> float:
        """The delay before restart number ``attempt`` (0-based) since the last
        quiet period; ``unit_random`` is a number in [0, 1)."""
        try:
            grown = self.initial * self.multiplier**attempt
        except OverflowError:  # a long-flapping child: the power outgrows a float
            grown = math.inf if self.initial > 0 else 0.0
        cap = min(self.max, MAX_SECONDS)  # max may be math.inf: no cap but a timer's
        base = min(cap, grown)
        spread = base * self.jitter * (2.0 * unit_random - 1.0)
        return max(0.0, min(cap, base + spread))


class _Default(enum.Enum):
    TOKEN = 0

    def __repr__(self) -> str:
        return "<default>"


_DEFAULT: Final = _Default.TOKEN


def _check_id(_inst: Any, _attr: Any, value: Any) -> None:
    try:
        hash(value)
    except Exception:  # noqa: BLE001 - unhashable, or a __hash__ that fails
        raise TypeError(
            f"ChildSpec.id must be a hashable value (a str, usually), not {safe_repr(value)}"
        ) from None
    if value is None:
        raise TypeError("ChildSpec.id must be a hashable value (a str, usually), not None")


START_USAGE: Final = "an async callable returning a Pid (for example partial(MyServer.start, arg))"
"""What a child's start function must be, as error messages say it."""


def _check_start(_inst: Any, _attr: Any, value: Any) -> None:
    # A sync callable is accepted (``lambda: MyServer.start(arg)`` returns
    # an awaitable); ``_ops.start_child_process`` checks what it returns.
    if (
        inspect.iscoroutine(value)
        or isinstance(value, type)
        or not callable(value)
        or inspect.isasyncgenfunction(value)
    ):
        async_entry(value, "ChildSpec.start", usage=START_USAGE)


def _check_enum(kind: type[enum.Enum], field: str) -> Callable[[object, object, object], None]:
    def check(_inst: object, _attr: object, value: object) -> None:
        if not isinstance(value, kind):
            raise TypeError(
                f"ChildSpec.{field} must be a {kind.__name__} member, not {safe_repr(value)}"
            )

    return check


def _check_backoff(_inst: Any, _attr: Any, value: Any) -> None:
    if value is not None and not isinstance(value, Backoff):
        raise TypeError(f"ChildSpec.backoff must be None or a Backoff, not {safe_repr(value)}")


def _check_significant(_inst: Any, _attr: Any, value: Any) -> None:
    if type(value) is not bool:
        raise TypeError(f"ChildSpec.significant must be True or False, not {safe_repr(value)}")


@attrs.frozen
class ChildSpec:
    """How a supervisor starts, restarts and stops one child.

    ``start`` is an async callable returning a ``Pid`` (or a ``(pid, info)``
    pair, or None to be ignored); the supervisor links to that pid and
    becomes its parent. ``shutdown`` is a number of seconds
    (>= 0) to wait after ``SHUTDOWN`` before ``KILL`` (0, as in OTP: send
    ``SHUTDOWN``, then ``KILL`` at once; ``math.inf`` waits as ``INFINITY``
    does), or ``BRUTAL_KILL``, or ``INFINITY`` (the default for
    ``ChildType.SUPERVISOR``; 5.0 for workers).
    ``backoff`` optionally delays restarts of this child (see ``Backoff``).
    ``significant`` (OTP 24) marks a transient or temporary child whose own
    end, when it is not restarted, may shut its supervisor down (see the
    supervisor's ``auto_shutdown``); a permanent child cannot be significant.
    """

    id: Hashable = attrs.field(validator=_check_id)
    start: StartFn = attrs.field(validator=_check_start)
    restart: Restart = attrs.field(
        default=Restart.PERMANENT, validator=_check_enum(Restart, "restart")
    )
    shutdown: ShutdownSetting = attrs.field(default=_DEFAULT)  # type: ignore[assignment]
    type: ChildType = attrs.field(
        default=ChildType.WORKER, validator=_check_enum(ChildType, "type")
    )
    backoff: Backoff | None = attrs.field(default=None, validator=_check_backoff, kw_only=True)
    significant: bool = attrs.field(default=False, validator=_check_significant, kw_only=True)

    def __attrs_post_init__(self) -> None:
        if self.significant and self.restart is Restart.PERMANENT:
            raise ValueError(
                f"ChildSpec {safe_repr(self.id)}: significant=True needs restart=Restart.TRANSIENT "
                "or Restart.TEMPORARY; a permanent child is always restarted, so its end can "
                "never shut its supervisor down (OTP refuses this combination too)"
            )
        shutdown: object = self.shutdown
        if shutdown is _DEFAULT:
            shutdown = INFINITY if self.type is ChildType.SUPERVISOR else 5.0
            object.__setattr__(self, "shutdown", shutdown)
        if isinstance(shutdown, ShutdownMode):
            return
        if not _number(shutdown):
            raise TypeError(
                f"ChildSpec.shutdown must be seconds (a number >= 0), BRUTAL_KILL or "
                f"INFINITY, not {safe_repr(shutdown)}"
            )
        if not shutdown >= 0 or not _fits_float(shutdown):  # type: ignore[operator,arg-type]
            raise ValueError(
                f"ChildSpec.shutdown must be >= 0 seconds (0 sends SHUTDOWN and kills at "
                f"once; BRUTAL_KILL kills without SHUTDOWN), not {safe_repr(shutdown)}"
            )
        # Not NaN nor beyond a float (math.inf waits like INFINITY).
        check_seconds(shutdown, "", "ChildSpec.shutdown", no_limit=True)
