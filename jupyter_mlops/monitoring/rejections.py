"""The requests a model's deployments refused, as a monitor sees them: how many of the
requests received in a window were refused, and why (bad JSON, schema, missing value, too
large, ...). Traffic the model refuses never reaches the inference log's predictions, so
without this a monitor would see a quiet, healthy model while clients get 4xx.

Deployments count refusals per reason and write them with their inference log's flush,
one row per reason and minute, so a window's counts are exact to within a minute at its
start; requests served are counted exactly from the log.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ..store import Store, current_store

__all__ = ["MIN_REQUESTS", "Rejections", "rejection_stats"]

MIN_REQUESTS = 20
"""A rejection rate alerts only over at least this many requests received: two refusals
of the first three requests say little."""

_HOUR = 3600.0


@dataclass
class Rejections:
    """Requests received (served plus refused) and refused in a window, by reason."""

    received: int
    rejected: int
    reasons: dict[str, int] = field(default_factory=dict)  # most frequent first
    examples: dict[str, str] = field(default_factory=dict)  # the last message per reason
    since: float | None = None
    until: float | None = None

    @property
    def rate(self) -> float | None:
        """The share of requests refused (None when none was received)."""
        return self.rejected / self.received if self.received else None

    def top(self, n: int = 3) -> list[tuple[str, int]]:
        """The ``n`` most frequent reasons with their counts."""
        return list(self.reasons.items())[:n]

    def line(self) -> str:
        """One line: the rate, of how many requests, and the top reasons."""
        if not self.received:
            return "no requests received"
        reasons = ", ".join(f"{r} {n:,}" for r, n in self.top())
        return f"{self.rate:.1%} of {self.received:,} requests refused" + (
            f" ({reasons})" if reasons else ""
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON: received, rejected, rate, reasons, examples."""
        return {
            "received": self.received,
            "rejected": self.rejected,
            "rate": self.rate,
            "reasons": dict(self.reasons),
            "examples": dict(self.examples),
        }


def rejection_stats(
    name: str,
    *,
    since: float | None,
    until: float | None = None,
    store: Store | None = None,
) -> Rejections:
    """The requests model ``name``'s deployments received and refused between ``since``
    and ``until`` (now when None; the last hour when ``since`` is None)."""
    from ..serving.inference_log import logged_requests, rejections

    store = store or current_store()
    until = time.time() if until is None else until
    since = until - _HOUR if since is None else since
    frame = rejections(name, since=since, until=until, store=store)
    reasons: dict[str, int] = {}
    examples: dict[str, str] = {}
    if len(frame):
        counts = frame.groupby("reason")["requests"].sum().sort_values(ascending=False)
        reasons = {str(k): int(v) for k, v in counts.items()}
        last = frame.drop_duplicates("reason", keep="last")
        examples = {str(r): str(e) for r, e in zip(last["reason"], last["example"], strict=True)}
    rejected = sum(reasons.values())
    served = logged_requests(name, since, until, store=store)
    return Rejections(served + rejected, rejected, reasons, examples, since, until)
