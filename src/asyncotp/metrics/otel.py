"""OpenTelemetry metrics for an asyncotp node (the ``otel`` extra).

Example, with the SDK and any reader or exporter::

    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    provider = MeterProvider(metric_readers=[PeriodicExportingMetricReader(exporter)])
    metrics = OTelMetrics(provider)            # attaches to the telemetry events
    ...
    metrics.close()

docs/telemetry.md lists every instrument.
"""

from .._core import publish as _publish
from ._otel import CALL_DURATION, OTelMetrics

__all__ = ("CALL_DURATION", "OTelMetrics")

_publish((OTelMetrics,), __name__)
