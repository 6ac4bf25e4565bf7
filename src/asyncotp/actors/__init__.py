"""Actors: processes, mailboxes, links, monitors, registry, timers, GenServer,
StateMachine, Agent, Task.

The runtime itself lives in ``asyncotp._core``; this namespace re-exports its
public half and holds the behaviours built on it (``GenServer``,
``StateMachine``, ``Agent``, ``Task``).
"""

from .._core import KILL as KILL
from .._core import KILLED as KILLED
from .._core import NOPROC as NOPROC
from .._core import NOREPLY as NOREPLY
from .._core import NORMAL as NORMAL
from .._core import SHUTDOWN as SHUTDOWN
from .._core import Action as Action
from .._core import ActorError as ActorError
from .._core import CallbackMode as CallbackMode
from .._core import Caller as Caller
from .._core import CallEvent as CallEvent
from .._core import CallTimeout as CallTimeout
from .._core import Cast as Cast
from .._core import Down as Down
from .._core import EventKind as EventKind
from .._core import EventTimeout as EventTimeout
from .._core import EventType as EventType
from .._core import Exited as Exited
from .._core import ExitReason as ExitReason
from .._core import GenericTimeout as GenericTimeout
from .._core import GenericTimeoutEvent as GenericTimeoutEvent
from .._core import KeepState as KeepState
from .._core import MailboxFull as MailboxFull
from .._core import MonitorRef as MonitorRef
from .._core import NameTaken as NameTaken
from .._core import NextEvent as NextEvent
from .._core import Node as Node
from .._core import NoNodeError as NoNodeError
from .._core import NoProcess as NoProcess
from .._core import NoReply as NoReply
from .._core import NotAnActorError as NotAnActorError
from .._core import Overflow as Overflow
from .._core import Pid as Pid
from .._core import Postpone as Postpone
from .._core import ProcessInfo as ProcessInfo
from .._core import ReceiveTimeout as ReceiveTimeout
from .._core import RepeatState as RepeatState
from .._core import Reply as Reply
from .._core import ServerExited as ServerExited
from .._core import Shutdown as Shutdown
from .._core import StartError as StartError
from .._core import StateTimeout as StateTimeout
from .._core import Stop as Stop
from .._core import TaskExited as TaskExited
from .._core import TaskTimeout as TaskTimeout
from .._core import TimerRef as TimerRef
from .._core import Transition as Transition
from .._core import WrongThreadError as WrongThreadError
from .._core import call as call
from .._core import cancel_timer as cancel_timer
from .._core import cast as cast
from .._core import demonitor as demonitor
from .._core import is_alive as is_alive
from .._core import is_clean_exit as is_clean_exit
from .._core import link as link
from .._core import monitor as monitor
from .._core import node as node
from .._core import process_info as process_info
from .._core import processes as processes
from .._core import read_timer as read_timer
from .._core import receive as receive
from .._core import register as register
from .._core import registered as registered
from .._core import run as run
from .._core import self_pid as self_pid
from .._core import send as send
from .._core import send_after as send_after
from .._core import send_exit as send_exit
from .._core import set_trap_exits as set_trap_exits
from .._core import spawn as spawn
from .._core import stop as stop
from .._core import unlink as unlink
from .._core import unregister as unregister
from .._core import whereis as whereis
from ._agent import Agent as Agent
from ._agent import AgentRequest as AgentRequest
from ._genserver import GenServer as GenServer
from ._statemachine import StateMachine as StateMachine
from ._task import Task as Task
from ._task import TaskReply as TaskReply
