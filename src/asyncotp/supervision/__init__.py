"""Supervision: child specs, Supervisor, DynamicSupervisor, TaskSupervisor, Application."""

from .._core import BRUTAL_KILL as BRUTAL_KILL
from .._core import INFINITY as INFINITY
from .._core import Backoff as Backoff
from .._core import ChildNotFound as ChildNotFound
from .._core import ChildSpec as ChildSpec
from .._core import ChildType as ChildType
from .._core import DuplicateChild as DuplicateChild
from .._core import MaxChildren as MaxChildren
from .._core import Restart as Restart
from .._core import ShutdownMode as ShutdownMode
from .._core import Strategy as Strategy
from ._application import Application as Application
from ._base import GAVE_UP as GAVE_UP
from ._base import AutoShutdown as AutoShutdown
from ._base import ChildCounts as ChildCounts
from ._base import ChildInfo as ChildInfo
from ._client import count_children as count_children
from ._client import delete_child as delete_child
from ._client import restart_child as restart_child
from ._client import start_child as start_child
from ._client import supervisor_health as supervisor_health
from ._client import terminate_child as terminate_child
from ._client import which_children as which_children
from ._dynamic import DynamicSupervisor as DynamicSupervisor
from ._supervisor import Supervisor as Supervisor
from ._task_supervisor import TaskSupervisor as TaskSupervisor
