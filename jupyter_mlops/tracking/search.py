"""``runs()``: the runs of a store as a DataFrame, filtered and ordered in SQL.

One query selects the runs (filter, order and limit all run in the database); three
more fetch their params, latest metrics and tags, which are pivoted into columns.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ..errors import QueryError
from ..store import Store, current_store, schema
from . import query as q
from .values import decode_param

__all__ = ["runs", "select_run_ids"]

_TIME_ATTRS = {"start_time", "end_time"}


class _Compiler:
    """Turns a query tree into SQLAlchemy expressions over ``runs`` joined to ``experiments``."""

    def __init__(self, text: str):
        self.text = text

    def attr(self, key: str) -> sa.ColumnElement[Any]:
        if key == "experiment":
            return schema.experiments.c.name
        return schema.runs.c[key]

    def field(self, node: q.Field, numeric: bool) -> sa.ColumnElement[Any]:
        r = schema.runs
        if node.namespace == "attr":
            return self.attr(node.key)
        if node.namespace == "metrics":
            t = schema.latest_metrics
            col = t.c.value
        elif node.namespace == "params":
            t = schema.params
            col = t.c.num if numeric else t.c.value
        else:
            t = schema.tags
            col = t.c.value
        return (
            sa.select(col)
            .where(t.c.run_id == r.c.run_id, t.c.key == sa.bindparam(None, node.key))
            .scalar_subquery()
        )

    def value(self, node: q.Node, numeric: bool, time: bool = False) -> sa.ColumnElement[Any]:
        if isinstance(node, q.Literal):
            value = node.value
            if time and value is not None:
                value = q.parse_time(value, self.text, node.pos)
            elif isinstance(value, bool) and numeric:
                value = float(value)
            return sa.literal(value)
        if isinstance(node, q.Field):
            return self.field(node, numeric)
        if isinstance(node, q.BinOp):
            left = self.value(node.left, True)
            right = self.value(node.right, True)
            return {
                "+": left + right,
                "-": left - right,
                "*": left * right,
                "/": left / right,
            }[node.op]
        raise QueryError("Expected a value", self.text, node.pos)

    @staticmethod
    def _is_numeric(node: q.Node) -> bool:
        if isinstance(node, q.Literal):
            return isinstance(node.value, int | float) and node.value is not None
        if isinstance(node, q.BinOp):
            return True
        if isinstance(node, q.Field):
            return node.namespace == "metrics" or node.key in {"duration_s", *_TIME_ATTRS}
        return False

    @staticmethod
    def _is_time(node: q.Node) -> bool:
        return isinstance(node, q.Field) and node.namespace == "attr" and node.key in _TIME_ATTRS

    def condition(self, node: q.Node) -> sa.ColumnElement[bool]:
        if isinstance(node, q.And):
            return sa.and_(*(self.condition(i) for i in node.items))
        if isinstance(node, q.Or):
            return sa.or_(*(self.condition(i) for i in node.items))
        if isinstance(node, q.Not):
            return sa.not_(self.condition(node.item))
        if isinstance(node, q.Compare):
            numeric = self._is_numeric(node.left) or self._is_numeric(node.right)
            time = self._is_time(node.left) or self._is_time(node.right)
            left = self.value(node.left, numeric, time)
            right = self.value(node.right, numeric, time)
            if isinstance(node.right, q.Literal) and node.right.value is None:
                return left.is_(None) if node.op == "=" else left.is_not(None)
            return {
                "=": left == right,
                "!=": left != right,
                "<": left < right,
                "<=": left <= right,
                ">": left > right,
                ">=": left >= right,
            }[node.op]
        if isinstance(node, q.InList):
            numeric = all(self._is_numeric(v) for v in node.values)
            operand = self.value(node.operand, numeric)
            values = [float(v.value) if numeric else v.value for v in node.values]
            cond = operand.in_(values)
            return sa.not_(cond) if node.negated else cond
        if isinstance(node, q.IsNull):
            operand = self.value(node.operand, False)
            return operand.is_not(None) if node.negated else operand.is_(None)
        if isinstance(node, q.Like):
            operand = self.value(node.operand, False)
            cond = operand.like(node.pattern)
            return sa.not_(cond) if node.negated else cond
        raise QueryError("Expected a condition", self.text, node.pos)

    def order(self, node: q.Field, desc: bool) -> sa.ColumnElement[Any]:
        col = self.field(node, numeric=node.namespace != "tags")
        return (col.desc() if desc else col.asc()).nulls_last()


def select_run_ids(
    experiment: str | None = None,
    filter: str | None = None,
    order_by: str | list[str] | None = None,
    limit: int | None = None,
) -> sa.Select[Any]:
    """The SELECT of run rows (runs + experiment name) for these arguments."""
    r, e = schema.runs, schema.experiments
    stmt = sa.select(
        r.c.run_id,
        r.c.name,
        e.c.name.label("experiment"),
        r.c.status,
        r.c.start_time,
        r.c.duration_s,
    ).join(e, e.c.experiment_id == r.c.experiment_id)
    if experiment is not None:
        stmt = stmt.where(e.c.name == experiment)
    if filter and filter.strip():
        compiler = _Compiler(filter)
        stmt = stmt.where(compiler.condition(q.parse(filter)))
    if order_by:
        compiler = _Compiler(str(order_by))
        stmt = stmt.order_by(*(compiler.order(f, d) for f, d in q.parse_order(order_by)))
    stmt = stmt.order_by(r.c.start_time.desc(), r.c.run_id)
    if limit is not None:
        if not isinstance(limit, int) or limit < 0:
            raise QueryError(f"limit must be a non-negative integer, got {limit!r}")
        stmt = stmt.limit(limit)
    return stmt


_BASE_COLUMNS = ["run_id", "name", "experiment", "status", "start_time", "duration_s"]


def runs(
    experiment: str | None = None,
    filter: str | None = None,
    order_by: str | list[str] | None = None,
    limit: int | None = None,
    *,
    store: Store | None = None,
) -> Any:
    """Runs as a DataFrame: one row per run, ``params.*``, ``metrics.*`` and ``tags.*`` columns.

    ``filter`` uses the query language of ``jupyter_mlops.tracking.query``; ``order_by``
    takes ``"-metrics.accuracy"`` or ``"metrics.accuracy desc"`` (default: newest first).
    """
    import pandas as pd

    store = store or current_store()
    stmt = select_run_ids(experiment, filter, order_by, limit)
    if not store.exists:
        return pd.DataFrame(columns=_BASE_COLUMNS)
    with store.read() as conn:
        rows = conn.execute(stmt).all()
        ids = [row[0] for row in rows]
        wanted = None if (experiment is None and not filter and limit is None) else stmt
        params = _fetch(conn, schema.params, ["key", "value", "num", "vtype"], ids, wanted)
        metrics = _fetch(conn, schema.latest_metrics, ["key", "value"], ids, wanted)
        tags = _fetch(conn, schema.tags, ["key", "value"], ids, wanted)
    frame = pd.DataFrame(rows, columns=_BASE_COLUMNS)
    frame["start_time"] = pd.to_datetime(frame["start_time"], unit="s", utc=True)
    index = {rid: i for i, rid in enumerate(ids)}
    n = len(ids)
    extra: dict[str, Any] = {}

    pcols: dict[str, list[Any]] = {}
    ptypes: dict[str, set[str]] = {}
    for rid, key, value, num, vtype in params:
        pos = index.get(rid)
        if pos is None:
            continue
        col = pcols.get(key)
        if col is None:
            col = pcols[key] = [None] * n
            ptypes[key] = set()
        ptypes[key].add(vtype)
        col[pos] = num if vtype in ("int", "float") else decode_param(value, vtype)
    for key in sorted(pcols):
        extra[f"params.{key}"] = _column(pcols[key], ptypes[key])
    mcols: dict[str, Any] = {}
    import numpy as np

    for rid, key, value in metrics:
        pos = index.get(rid)
        if pos is None:
            continue
        col = mcols.get(key)
        if col is None:
            col = mcols[key] = np.full(n, np.nan)
        if value is not None:
            col[pos] = value
    for key in sorted(mcols):
        extra[f"metrics.{key}"] = mcols[key]
    tcols: dict[str, list[Any]] = {}
    for rid, key, value in tags:
        pos = index.get(rid)
        if pos is None:
            continue
        tcols.setdefault(key, [None] * n)[pos] = value
    for key in sorted(tcols):
        extra[f"tags.{key}"] = tcols[key]
    if extra:
        frame = pd.concat([frame, pd.DataFrame(extra, index=frame.index)], axis=1)
    return frame


def _column(values: list[Any], types: set[str]) -> Any:
    """A param column: int64 or float64 when every value is a number, else objects."""
    import pandas as pd

    if types <= {"int", "float"}:
        series = pd.Series([float("nan") if v is None else v for v in values], dtype="float64")
        if types == {"int"} and not series.isna().any():
            return series.astype("int64")
        return series
    return pd.Series(values, dtype="object")


def _fetch(
    conn: sa.Connection,
    table: sa.Table,
    columns: list[str],
    ids: list[str],
    stmt: sa.Select[Any] | None,
) -> list[Any]:
    if not ids:
        return []
    cols = [table.c.run_id, *(table.c[c] for c in columns)]
    if stmt is None:
        return conn.execute(sa.select(*cols)).all()
    if len(ids) <= 900:
        return conn.execute(sa.select(*cols).where(table.c.run_id.in_(ids))).all()
    chosen = stmt.subquery()
    return conn.execute(
        sa.select(*cols).where(table.c.run_id.in_(sa.select(chosen.c.run_id)))
    ).all()
