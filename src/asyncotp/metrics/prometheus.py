"""Prometheus metrics for an asyncotp node (the ``prometheus`` extra).

Example::

    from asyncotp.metrics.prometheus import PrometheusMetrics, serve_metrics

    metrics = PrometheusMetrics()              # attaches to the telemetry events
    spawn(functools.partial(serve_metrics, metrics, port=9464))

or mount ``MetricsApp(metrics)`` in your ASGI app next to the ``HealthApp``.
docs/telemetry.md lists every metric.
"""

from .._core import publish as _publish
from ._prometheus import DEFAULT_BUCKETS, MetricsApp, PrometheusMetrics, serve_metrics

__all__ = ("DEFAULT_BUCKETS", "MetricsApp", "PrometheusMetrics", "serve_metrics")

_publish((MetricsApp, PrometheusMetrics, serve_metrics), __name__)
