"""Metrics adapters built on ``asyncotp.telemetry``: optional extras.

* ``asyncotp.metrics.prometheus`` (``pip install 'asyncotp[prometheus]'``):
  ``PrometheusMetrics`` fills a ``prometheus_client`` registry from the
  runtime's events; ``MetricsApp`` serves it as an ASGI app (next to the
  health app), ``serve_metrics`` on its own port.
* ``asyncotp.metrics.otel`` (``pip install 'asyncotp[otel]'``):
  ``OTelMetrics`` records the same events as OpenTelemetry instruments,
  with the semantic-convention names where they exist.

Neither is imported by ``import asyncotp``; each imports its library when
it is imported itself, and says which extra to install if it is missing.
This package sits above ``resilience`` and below the top-level package
(docs/architecture.md).
"""
