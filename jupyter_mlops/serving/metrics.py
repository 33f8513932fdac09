"""Prometheus metrics of a serving process: requests by route and status, latency
histogram, rows predicted, refused prediction requests by reason, and the model version
served.

With several workers, each worker writes to a shared multiprocess folder
(``PROMETHEUS_MULTIPROC_DIR``) and ``/metrics`` aggregates them, as prometheus_client
documents for gunicorn/uvicorn worker pools.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

__all__ = ["CONTENT_TYPE_LATEST", "ServingMetrics"]

_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class ServingMetrics:
    """The counters one serving app updates, in their own registry."""

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = CollectorRegistry(auto_describe=True)
        kw: dict[str, Any] = {"registry": None if self.multiprocess else self.registry}
        self.requests = Counter(
            "mlops_requests", "HTTP requests by route and status.", ["route", "status"], **kw
        )
        self.latency = Histogram(
            "mlops_request_latency_seconds",
            "Time from request received to response ready, by route.",
            ["route"],
            buckets=_BUCKETS,
            **kw,
        )
        self.rows = Counter("mlops_predicted_rows", "Rows predicted.", ["model"], **kw)
        self.rejected = Counter(
            "mlops_rejected_requests",
            "Prediction requests refused, by route and reason.",
            ["route", "reason"],
            **kw,
        )
        gauge_kw = dict(kw)
        if self.multiprocess:
            gauge_kw["multiprocess_mode"] = "max"
        self.version = Gauge(
            "mlops_model_version", "The model version being served.", ["model"], **gauge_kw
        )

    def observe(self, route: str, status: int, seconds: float) -> None:
        """Count one request and its latency."""
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)
