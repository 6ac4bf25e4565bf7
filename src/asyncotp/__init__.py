"""asyncotp: Erlang/OTP's actors and supervision trees on asyncio.

The public API lives in thin namespaces, all re-exported here:
``asyncotp.actors`` (processes, GenServer, StateMachine, Agent, Task, Registry),
``asyncotp.supervision`` (child specs, supervisors, applications, task
supervisors), ``asyncotp.web`` (ASGI servers as supervised children),
``asyncotp.health`` (health and readiness, ASGI endpoints),
``asyncotp.observer`` (snapshots of the live node, a web dashboard,
``python -m asyncotp top``) and ``asyncotp.resilience`` (retries, circuit
breakers, load shedding, idempotency, dead letters). ``asyncotp.from_thread``
is the bridge for other threads (the functions run on the node's event-loop
thread). ``asyncotp.testing`` (the kit to property-test crash recovery) is
imported on demand.

Layers, bottom up (each imports only the ones below it): ``_core`` (the
runtime) <- ``actors`` <- ``supervision`` <- ``web`` <- ``health`` <- ``observer`` <-
``resilience`` <- ``testing``. ``docs/architecture.md`` maps them.
"""

from . import actors as actors
from . import from_thread as from_thread
from . import health as health
from . import observer as observer
from . import resilience as resilience
from . import supervision as supervision
from . import telemetry as telemetry
from . import web as web
from ._core import publish as _publish
from .actors import KILL as KILL
from .actors import KILLED as KILLED
from .actors import NOPROC as NOPROC
from .actors import NOREPLY as NOREPLY
from .actors import NORMAL as NORMAL
from .actors import SHUTDOWN as SHUTDOWN
from .actors import Action as Action
from .actors import ActorError as ActorError
from .actors import Agent as Agent
from .actors import AgentRequest as AgentRequest
from .actors import CallbackMode as CallbackMode
from .actors import Caller as Caller
from .actors import CallEvent as CallEvent
from .actors import CallTimeout as CallTimeout
from .actors import Cast as Cast
from .actors import Down as Down
from .actors import EventKind as EventKind
from .actors import EventTimeout as EventTimeout
from .actors import EventType as EventType
from .actors import Exited as Exited
from .actors import ExitReason as ExitReason
from .actors import GenericTimeout as GenericTimeout
from .actors import GenericTimeoutEvent as GenericTimeoutEvent
from .actors import GenServer as GenServer
from .actors import KeepState as KeepState
from .actors import Keys as Keys
from .actors import MailboxFull as MailboxFull
from .actors import MonitorRef as MonitorRef
from .actors import Name as Name
from .actors import NameRegistry as NameRegistry
from .actors import NameTaken as NameTaken
from .actors import NextEvent as NextEvent
from .actors import Node as Node
from .actors import NoNodeError as NoNodeError
from .actors import NoProcess as NoProcess
from .actors import NoReply as NoReply
from .actors import NotAnActorError as NotAnActorError
from .actors import Overflow as Overflow
from .actors import Pid as Pid
from .actors import Postpone as Postpone
from .actors import ProcessInfo as ProcessInfo
from .actors import ReceiveTimeout as ReceiveTimeout
from .actors import Registry as Registry
from .actors import RegistryEntry as RegistryEntry
from .actors import RegistryEvent as RegistryEvent
from .actors import RegistryRef as RegistryRef
from .actors import RepeatState as RepeatState
from .actors import Reply as Reply
from .actors import ServerExited as ServerExited
from .actors import Shutdown as Shutdown
from .actors import StartError as StartError
from .actors import StateMachine as StateMachine
from .actors import StateTimeout as StateTimeout
from .actors import Stop as Stop
from .actors import Task as Task
from .actors import TaskExited as TaskExited
from .actors import TaskReply as TaskReply
from .actors import TaskTimeout as TaskTimeout
from .actors import TimerRef as TimerRef
from .actors import Transition as Transition
from .actors import Via as Via
from .actors import WrongThreadError as WrongThreadError
from .actors import call as call
from .actors import cancel_timer as cancel_timer
from .actors import cast as cast
from .actors import demonitor as demonitor
from .actors import is_alive as is_alive
from .actors import is_clean_exit as is_clean_exit
from .actors import link as link
from .actors import monitor as monitor
from .actors import node as node
from .actors import process_info as process_info
from .actors import processes as processes
from .actors import read_timer as read_timer
from .actors import receive as receive
from .actors import register as register
from .actors import registered as registered
from .actors import run as run
from .actors import self_pid as self_pid
from .actors import send as send
from .actors import send_after as send_after
from .actors import send_exit as send_exit
from .actors import set_trap_exits as set_trap_exits
from .actors import spawn as spawn
from .actors import stop as stop
from .actors import unlink as unlink
from .actors import unregister as unregister
from .actors import via as via
from .actors import whereis as whereis
from .health import TREE_CHECK as TREE_CHECK
from .health import CheckResult as CheckResult
from .health import ChildHealth as ChildHealth
from .health import HealthApp as HealthApp
from .health import HealthReport as HealthReport
from .health import ReadinessServer as ReadinessServer
from .health import SupervisorHealth as SupervisorHealth
from .health import health_report as health_report
from .health import ready_when as ready_when
from .health import remove_ready_check as remove_ready_check
from .health import serve_health as serve_health
from .observer import TOP_KEYS as TOP_KEYS
from .observer import ActorSnapshot as ActorSnapshot
from .observer import ChildSnapshot as ChildSnapshot
from .observer import DashboardApp as DashboardApp
from .observer import NodeSnapshot as NodeSnapshot
from .observer import SupervisorSnapshot as SupervisorSnapshot
from .observer import serve_dashboard as serve_dashboard
from .observer import snapshot as snapshot
from .observer import top as top
from .resilience import DEFAULT_RETRY_ON as DEFAULT_RETRY_ON
from .resilience import BreakerState as BreakerState
from .resilience import BreakerStateChanged as BreakerStateChanged
from .resilience import BreakerStats as BreakerStats
from .resilience import CircuitBreaker as CircuitBreaker
from .resilience import CircuitOpen as CircuitOpen
from .resilience import DeadLetter as DeadLetter
from .resilience import DeadLetterNotFound as DeadLetterNotFound
from .resilience import DeadLetterQueue as DeadLetterQueue
from .resilience import DeadLetterStats as DeadLetterStats
from .resilience import IdempotencyKeyReused as IdempotencyKeyReused
from .resilience import IdempotencyStats as IdempotencyStats
from .resilience import IdempotencyStore as IdempotencyStore
from .resilience import JobFailed as JobFailed
from .resilience import Overloaded as Overloaded
from .resilience import PoolStats as PoolStats
from .resilience import RequestEnvelope as RequestEnvelope
from .resilience import RetryAttempt as RetryAttempt
from .resilience import RetryDeadlineExceeded as RetryDeadlineExceeded
from .resilience import RetryError as RetryError
from .resilience import RetryPolicy as RetryPolicy
from .resilience import SheddingServer as SheddingServer
from .resilience import SheddingStats as SheddingStats
from .resilience import ShedReason as ShedReason
from .resilience import Undeliverable as Undeliverable
from .resilience import UndeliverableObserver as UndeliverableObserver
from .resilience import WorkerPool as WorkerPool
from .resilience import call_with_deadline as call_with_deadline
from .resilience import observe_undeliverable as observe_undeliverable
from .resilience import retry as retry
from .resilience import retrying as retrying
from .supervision import BRUTAL_KILL as BRUTAL_KILL
from .supervision import GAVE_UP as GAVE_UP
from .supervision import INFINITY as INFINITY
from .supervision import Application as Application
from .supervision import AutoShutdown as AutoShutdown
from .supervision import Backoff as Backoff
from .supervision import ChildCounts as ChildCounts
from .supervision import ChildInfo as ChildInfo
from .supervision import ChildNotFound as ChildNotFound
from .supervision import ChildSpec as ChildSpec
from .supervision import ChildType as ChildType
from .supervision import DuplicateChild as DuplicateChild
from .supervision import DynamicSupervisor as DynamicSupervisor
from .supervision import MaxChildren as MaxChildren
from .supervision import Restart as Restart
from .supervision import ShutdownMode as ShutdownMode
from .supervision import Strategy as Strategy
from .supervision import Supervisor as Supervisor
from .supervision import TaskSupervisor as TaskSupervisor
from .supervision import count_children as count_children
from .supervision import delete_child as delete_child
from .supervision import restart_child as restart_child
from .supervision import start_child as start_child
from .supervision import supervisor_health as supervisor_health
from .supervision import terminate_child as terminate_child
from .supervision import which_children as which_children
from .web import AsgiServer as AsgiServer
from .web import AsgiStats as AsgiStats
from .web import serve_asgi as serve_asgi

__version__ = "0.1.0"

_publish((value for name, value in list(globals().items()) if name[:1] != "_"), __name__)
