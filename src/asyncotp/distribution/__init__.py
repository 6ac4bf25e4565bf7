"""Nodes over NATS: actors across OS processes and machines.

Install the extra (``pip install 'asyncotp[nats]'``) and run a NATS server
(``nats-server -js``; Debian: ``apt-get install nats-server``). Then::

    from asyncotp import distribution
    from asyncotp.distribution import NatsCluster

    distribution.run(main, node="orders", cluster=NatsCluster("nats://127.0.0.1:4222"))

Pids of actors on other nodes work with ``send``, ``cast``, ``call``,
``stop``, ``link``, ``unlink``, ``monitor``, ``demonitor`` and ``send_exit``
as local ones do. A lost node fires every link and monitor to its actors
with ``NOCONNECTION``. See docs/distribution.md.

This package imports nats-py: import it only where a node joins a cluster
(``import asyncotp`` never does).
"""

from .._core import NOCONNECTION as NOCONNECTION
from .._core import NodeUnreachable as NodeUnreachable
from .._core import publish as _publish
from ._api import connect as connect
from ._api import demonitor_node as demonitor_node
from ._api import group_members as group_members
from ._api import incarnation as incarnation
from ._api import join_group as join_group
from ._api import leave_group as leave_group
from ._api import monitor_node as monitor_node
from ._api import node_name as node_name
from ._api import node_of_pid as node_of_pid
from ._api import nodes as nodes
from ._api import register_global as register_global
from ._api import registered_global as registered_global
from ._api import run as run
from ._api import statistics as statistics
from ._api import unregister_global as unregister_global
from ._api import whereis_global as whereis_global
from ._api import whereis_remote as whereis_remote
from ._api import which_groups as which_groups
from ._codec import BadMessage as BadMessage
from ._codec import RemoteError as RemoteError
from ._config import NatsCluster as NatsCluster
from ._failover import TAKEN_OVER as TAKEN_OVER
from ._failover import GlobalStandby as GlobalStandby
from ._failover import global_child_spec as global_child_spec
from ._nodesup import NodePort as NodePort
from ._nodesup import NodeProcessExited as NodeProcessExited
from ._nodesup import node_child_spec as node_child_spec
from ._nodesup import start_nodes as start_nodes
from ._peers import DistributionStatistics as DistributionStatistics
from ._peers import NodeDown as NodeDown
from ._vianame import GLOBAL_NAMES as GLOBAL_NAMES
from ._vianame import GlobalNames as GlobalNames
from ._vianame import via_global as via_global

__all__ = (
    "GLOBAL_NAMES",
    "NOCONNECTION",
    "TAKEN_OVER",
    "BadMessage",
    "DistributionStatistics",
    "GlobalNames",
    "GlobalStandby",
    "NatsCluster",
    "NodeDown",
    "NodePort",
    "NodeProcessExited",
    "NodeUnreachable",
    "RemoteError",
    "connect",
    "demonitor_node",
    "global_child_spec",
    "group_members",
    "incarnation",
    "join_group",
    "leave_group",
    "monitor_node",
    "node_child_spec",
    "node_name",
    "node_of_pid",
    "nodes",
    "register_global",
    "registered_global",
    "run",
    "start_nodes",
    "statistics",
    "unregister_global",
    "via_global",
    "whereis_global",
    "whereis_remote",
    "which_groups",
)

_publish((value for name, value in list(globals().items()) if name[:1] != "_"), __name__)
