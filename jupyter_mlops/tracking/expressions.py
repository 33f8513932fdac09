"""Metric checks: expressions of the run query language evaluated on a dict of values.

``"accuracy >= 0.85"``, ``"rmse < 3.2"``, ``"f1 >= champion - 0.01"`` (the names are
whatever the caller provides). The monitors of deployed models and the gates of
retraining and CI use the same parser as ``mlops.runs(filter=...)``, so one syntax and one
set of error messages serve all three.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from typing import Any

from ..errors import QueryError
from .query import (
    And,
    BinOp,
    Compare,
    Field,
    InList,
    IsNull,
    Like,
    Literal,
    Node,
    Not,
    Or,
    parse,
)

__all__ = ["Check", "CheckResult", "evaluate", "fields_of"]

_COMPARE = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_ARITH = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}


def fields_of(node: Node) -> list[str]:
    """The names an expression reads, in order of appearance."""
    found: list[str] = []

    def walk(n: Any) -> None:
        if isinstance(n, Field):
            if n.key not in found:
                found.append(n.key)
        elif isinstance(n, BinOp | Compare):
            walk(n.left)
            walk(n.right)
        elif isinstance(n, InList | IsNull | Like):
            walk(n.operand)
        elif isinstance(n, And | Or):
            for item in n.items:
                walk(item)
        elif isinstance(n, Not):
            walk(n.item)

    walk(node)
    return found


def evaluate(node: Node, values: dict[str, Any]) -> Any:
    """The value of ``node`` with its names looked up in ``values``; a comparison with a
    missing value (None) is False, as in SQL."""
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Field):
        if node.key not in values:
            known = ", ".join(sorted(values)) or "none"
            raise QueryError(f"Unknown name {node.key!r}; available: {known}", "", node.pos)
        return values[node.key]
    if isinstance(node, BinOp):
        left, right = evaluate(node.left, values), evaluate(node.right, values)
        if left is None or right is None:
            return None
        if node.op == "/" and right == 0:
            return None
        return _ARITH[node.op](left, right)
    if isinstance(node, Compare):
        left, right = evaluate(node.left, values), evaluate(node.right, values)
        if left is None or right is None:
            return False
        try:
            return bool(_COMPARE[node.op](left, right))
        except TypeError:
            return False
    if isinstance(node, InList):
        value = evaluate(node.operand, values)
        inside = value in [v.value for v in node.values]
        return inside != node.negated
    if isinstance(node, IsNull):
        return (evaluate(node.operand, values) is None) != node.negated
    if isinstance(node, Like):
        value = evaluate(node.operand, values)
        pattern = "^" + re.escape(node.pattern).replace("%", ".*").replace("_", ".") + "$"
        return (isinstance(value, str) and re.match(pattern, value) is not None) != node.negated
    if isinstance(node, And):
        return all(evaluate(item, values) for item in node.items)
    if isinstance(node, Or):
        return any(evaluate(item, values) for item in node.items)
    if isinstance(node, Not):
        return not evaluate(node.item, values)
    raise QueryError(f"Cannot evaluate {type(node).__name__}", "", node.pos)


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome with the line a report shows."""

    check: str
    passed: bool
    values: dict[str, Any]
    skipped: bool = False
    reason: str = ""  # why a skipped check's value is missing, when it is known

    @property
    def line(self) -> str:
        """``PASS accuracy >= 0.85 (accuracy = 0.912)``; ``SKIP`` when a value is missing."""
        if self.skipped:
            if self.reason:
                return f"SKIP {self.check} ({self.reason})"
            missing = [k for k, v in self.values.items() if v is None]
            return f"SKIP {self.check} (no value yet for {', '.join(missing)})"
        shown = ", ".join(
            f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}"
            for k, v in self.values.items()
        )
        return f"{'PASS' if self.passed else 'FAIL'} {self.check}" + (
            f" ({shown})" if shown else ""
        )


class Check:
    """A parsed metric check such as ``"accuracy >= 0.85"``."""

    def __init__(self, text: str):
        self.text = text.strip()
        self.node = parse(self.text, fields="names")
        self.names = fields_of(self.node)

    def __call__(self, values: dict[str, Any], *, skip_missing: bool = False) -> CheckResult:
        """Evaluate on ``values`` (metric name → number). With ``skip_missing``, a check
        reading a value that is None (no labels yet) is skipped instead of failing."""
        used = {n: values.get(n) for n in self.names}
        evaluate(self.node, values)  # unknown names raise, missing values do not
        if skip_missing and any(v is None for v in used.values()):
            return CheckResult(self.text, False, used, skipped=True)
        return CheckResult(self.text, bool(evaluate(self.node, values)), used)

    def __repr__(self) -> str:
        return f"Check({self.text!r})"
