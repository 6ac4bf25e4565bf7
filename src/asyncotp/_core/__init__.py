"""The runtime core: everything the rest of asyncotp is built on.

Nothing outside ``asyncotp._core`` touches a ``Process`` record or a
``Node``'s tables: the layers above (``actors``, ``supervision``,
``health``, ``resilience``, ``testing``) import only the names below, from
this package, never from its private modules. The modules, bottom up:

* ``_pid``, ``_reasons``, ``_errors``, ``_clock``, ``_safe``, ``_validate``,
  ``_childspec``: values (pids, exit reasons, ``Down``/``Exited``, every
  error class, the time seam, ``safe_repr`` for user objects in messages,
  argument validators, child specs).
* ``_state``: the ``Process`` and ``Node`` records, process states, the
  context variables that say which actor and node a task belongs to.
* ``_mailbox``: ``deliver`` (the one deliver-and-wake path every sender
  uses), ``deliver_system`` (bounds never refuse it), overflow policies,
  ``receive`` with selective receive.
* ``_exits``: exit signals, links, the end of an actor (``exit_process``)
  and crash reports.
* ``_context``: the node and actor of the calling task; name resolution.
* ``_actor``: ``spawn``, the actor's task, ``send``, ``process_info``.
* ``_signals``: ``link``, ``monitor``, ``send_exit`` and friends.
* ``_via``: ``Via`` names and the ``NameRegistry`` protocol behind them
  (OTP's ``{via, Module, Name}``).
* ``_registry`` and ``_timers``: names (local and ``Via``), ``send_after``.
* ``_deadlines``: call deadlines sharing one loop timer.
* ``_server``: ``call``, ``cast``, ``stop``, ``Caller`` and the start
  handshake; ``_serverloop``: the GenServer loop (the ``GenServer`` class
  itself is ``asyncotp.actors``'); ``_returns``: what its callbacks return
  besides a reply (``Continue``, ``IdleTimeout``, ``IGNORE``); ``_requests``:
  ``send_request`` and its responses; ``_sys``: system requests
  (``asyncotp.sys``: state, suspend, statistics, tracing).
* ``_actions`` and ``_statem``: what a state machine's callbacks receive
  and return (event types, actions, ``KeepState``), and its loop and start
  handshake (the ``StateMachine`` class itself is ``asyncotp.actors``').
* ``_node``: ``node()``, ``run()`` and the orderly shutdown.
* ``_threads``: the bridge for other threads (``thread_send``,
  ``thread_cast``, ``thread_call``, ``thread_run``), public as
  ``asyncotp.from_thread``.
* ``_remote`` and ``_remote_ops``: the hook for pids of other nodes (a
  ``RemoteNode`` directory holding the distribution layer's ``Transport``)
  and what that layer may do to local actors for remote ones.
* ``_ops``: the internal API on pids for the layers above (listed last
  below).
* ``_introspect``: read-only facts about live actors for ``asyncotp.observer``
  (``describe``, ``describe_all``, ``supervisor_pids``).
* ``_telemetry`` (``telemetry`` below): the event bus, public as
  ``asyncotp.telemetry``; every layer emits through ``telemetry.execute``,
  behind its cheap guards (``telemetry.ANY``, ``CALLS``, ``ACTORS``,
  ``SLOW``). ``_lag``: the event-loop lag sampler (an actor).

Two rules hold everywhere (``_context``): only an actor's own task is that
actor (a task it starts is a plain task), and the functions run on the
node's event-loop thread (``WrongThreadError`` elsewhere).

The hot path of a call: ``_server.call`` -> ``_mailbox.deliver`` ->
the server's loop in ``_serverloop._serve`` -> ``handle_call`` -> the caller's
future. Of a crash: ``_actor._run_process`` catches the exception ->
``_exits.exit_process`` -> ``_exits.signal`` to each link (the supervisor
gets ``Exited``) and ``Down`` to each monitor.
"""

# -- the public runtime, re-exported by asyncotp.actors and asyncotp ----------
from . import _telemetry as telemetry  # noqa: F401 - the event bus, one namespace for every layer
from . import _validate as validate  # noqa: F401 - the validators, one namespace for the layers above
from ._actions import Action as Action
from ._actions import CallbackMode as CallbackMode
from ._actions import CallEvent as CallEvent
from ._actions import EventKind as EventKind
from ._actions import EventTimeout as EventTimeout
from ._actions import EventType as EventType
from ._actions import GenericTimeout as GenericTimeout
from ._actions import GenericTimeoutEvent as GenericTimeoutEvent
from ._actions import KeepState as KeepState
from ._actions import NextEvent as NextEvent
from ._actions import Postpone as Postpone
from ._actions import RepeatState as RepeatState
from ._actions import Reply as Reply
from ._actions import StateTimeout as StateTimeout
from ._actions import Transition as Transition
from ._actor import ProcessInfo as ProcessInfo
from ._actor import is_alive as is_alive
from ._actor import process_info as process_info
from ._actor import processes as processes
from ._actor import self_pid as self_pid
from ._actor import send as send
from ._actor import spawn as spawn
from ._childspec import BRUTAL_KILL as BRUTAL_KILL
from ._childspec import INFINITY as INFINITY
from ._childspec import Backoff as Backoff
from ._childspec import ChildSpec as ChildSpec
from ._childspec import ChildType as ChildType
from ._childspec import Restart as Restart
from ._childspec import ShutdownMode as ShutdownMode
from ._childspec import ShutdownSetting as ShutdownSetting
from ._childspec import Strategy as Strategy

# -- the internal API for the layers above: functions on pids and nodes -------
from ._clock import now as now
from ._context import current_node as current_node
from ._context import node_of as node_of
from ._errors import ActorError as ActorError
from ._errors import BreakerState as BreakerState
from ._errors import CallTimeout as CallTimeout
from ._errors import ChildNotFound as ChildNotFound
from ._errors import CircuitOpen as CircuitOpen
from ._errors import DeadLetterNotFound as DeadLetterNotFound
from ._errors import DuplicateChild as DuplicateChild
from ._errors import HandlerExists as HandlerExists
from ._errors import IdempotencyKeyReused as IdempotencyKeyReused
from ._errors import JobFailed as JobFailed
from ._errors import MailboxFull as MailboxFull
from ._errors import MaxChildren as MaxChildren
from ._errors import NameTaken as NameTaken
from ._errors import NodeUnreachable as NodeUnreachable
from ._errors import NoNodeError as NoNodeError
from ._errors import NoProcess as NoProcess
from ._errors import NotAnActorError as NotAnActorError
from ._errors import Overloaded as Overloaded
from ._errors import ReceiveTimeout as ReceiveTimeout
from ._errors import RetryDeadlineExceeded as RetryDeadlineExceeded
from ._errors import RetryError as RetryError
from ._errors import ServerExited as ServerExited
from ._errors import SettleTimeout as SettleTimeout
from ._errors import ShedReason as ShedReason
from ._errors import StartError as StartError
from ._errors import TaskExited as TaskExited
from ._errors import TaskTimeout as TaskTimeout
from ._errors import WaitTimeout as WaitTimeout
from ._errors import WrongThreadError as WrongThreadError
from ._introspect import ActorKind as ActorKind
from ._introspect import ProcessFacts as ProcessFacts
from ._introspect import describe as describe
from ._introspect import describe_all as describe_all
from ._introspect import supervisor_pids as supervisor_pids
from ._lag import lag_sampler_spec as lag_sampler_spec
from ._lag import start_lag_sampler as start_lag_sampler
from ._mailbox import receive as receive
from ._node import node as node
from ._node import run as run
from ._ops import calling_pid as calling_pid
from ._ops import dead_letter_hook as dead_letter_hook
from ._ops import deliver as deliver
from ._ops import deliver_system as deliver_system
from ._ops import drop_messages as drop_messages
from ._ops import exit_future as exit_future
from ._ops import interceptor as interceptor
from ._ops import is_exiting as is_exiting
from ._ops import is_supervisor as is_supervisor
from ._ops import is_waiting as is_waiting
from ._ops import kill as kill
from ._ops import link_pids as link_pids
from ._ops import live_pids as live_pids
from ._ops import lookup as lookup
from ._ops import loop_of as loop_of
from ._ops import mark_supervisor as mark_supervisor
from ._ops import node_pid as node_pid
from ._ops import node_running as node_running
from ._ops import on_exit as on_exit
from ._ops import registered_name as registered_name
from ._ops import request_stop as request_stop
from ._ops import running_node as running_node
from ._ops import set_dead_letter_hook as set_dead_letter_hook
from ._ops import set_interceptor as set_interceptor
from ._ops import start_child_process as start_child_process
from ._ops import unlink_pids as unlink_pids
from ._ops import using_node as using_node
from ._ops import wait_exit as wait_exit
from ._ops import whereis_on as whereis_on
from ._pid import Pid as Pid
from ._pid import Rep as Rep
from ._pid import Req as Req
from ._publish import publish as publish
from ._reasons import KILL as KILL
from ._reasons import KILLED as KILLED
from ._reasons import NOCONNECTION as NOCONNECTION
from ._reasons import NOPROC as NOPROC
from ._reasons import NORMAL as NORMAL
from ._reasons import SHUTDOWN as SHUTDOWN
from ._reasons import Down as Down
from ._reasons import Exited as Exited
from ._reasons import ExitReason as ExitReason
from ._reasons import MonitorRef as MonitorRef
from ._reasons import Shutdown as Shutdown
from ._reasons import Stop as Stop
from ._reasons import is_clean_exit as is_clean_exit
from ._registry import register as register
from ._registry import registered as registered
from ._registry import unregister as unregister
from ._registry import whereis as whereis
from ._remote import RemoteNode as RemoteNode
from ._remote import Transport as Transport
from ._remote import remote_of as remote_of
from ._remote_ops import add_remote_link as add_remote_link
from ._remote_ops import begin_call as begin_call
from ._remote_ops import drop_remote_link as drop_remote_link
from ._remote_ops import remote_down as remote_down
from ._remote_ops import remote_exit as remote_exit
from ._requests import RequestId as RequestId
from ._requests import Response as Response
from ._requests import check_response as check_response
from ._requests import receive_response as receive_response
from ._requests import receive_responses as receive_responses
from ._requests import send_request as send_request
from ._requests import wait_response as wait_response
from ._returns import IGNORE as IGNORE
from ._returns import TIMEOUT as TIMEOUT
from ._returns import Continue as Continue
from ._returns import IdleTimeout as IdleTimeout
from ._returns import Ignore as Ignore
from ._safe import safe_repr as safe_repr
from ._safe import safe_str as safe_str
from ._server import NOREPLY as NOREPLY
from ._server import Caller as Caller
from ._server import Cast as Cast
from ._server import NoReply as NoReply
from ._server import call as call
from ._server import cast as cast
from ._server import stop as stop
from ._server import token_call as token_call
from ._serverloop import start_server as start_server
from ._signals import adopt as adopt
from ._signals import demonitor as demonitor
from ._signals import link as link
from ._signals import monitor as monitor
from ._signals import send_exit as send_exit
from ._signals import set_trap_exits as set_trap_exits
from ._signals import unlink as unlink
from ._state import Node as Node
from ._state import Overflow as Overflow
from ._state import TimerRef as TimerRef
from ._statem import start_statem as start_statem
from ._sys import ServerStatistics as ServerStatistics
from ._sys import get_state as get_state
from ._sys import replace_state as replace_state
from ._sys import resume as resume
from ._sys import statistics as statistics
from ._sys import suspend as suspend
from ._sys import time_callbacks as time_callbacks
from ._sys import trace as trace
from ._threads import thread_call as thread_call
from ._threads import thread_cast as thread_cast
from ._threads import thread_run as thread_run
from ._threads import thread_send as thread_send
from ._timers import cancel_timer as cancel_timer
from ._timers import read_timer as read_timer
from ._timers import send_after as send_after
from ._validate import MAX_SECONDS as MAX_SECONDS
from ._validate import check_delay as check_delay
from ._validate import check_mailbox as check_mailbox
from ._validate import check_name as check_name
from ._validate import check_seconds as check_seconds
from ._validate import check_timeout as check_timeout
from ._validate import fn_name as fn_name
from ._validate import is_async_callable as is_async_callable
from ._via import Name as Name
from ._via import NameRegistry as NameRegistry
from ._via import Via as Via
