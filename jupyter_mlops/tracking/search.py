"""``runs()``: the runs of a store as a DataFrame, filtered and ordered in SQL.

One query selects the runs (filter, order and limit all run in the database); three
more fetch their params, latest metrics and tags, which are pivoted into columns.

Scope, as MLflow's ``search_runs``: by default the runs of the default experiment (the one
``%load_ext`` announces and ``set_experiment`` sets), so a notebook sees its own runs and
not another notebook's; ``experiment="*"`` reads every experiment, and a filter that names
``experiment`` sets the scope itself.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from ..errors import QueryError, ValidationError
from ..store import Store, current_store, schema
from . import query as q
from .defaults import default_experiment
from .values import decode_param
from .writer import DEFAULT_PARAMS_TAG, default_param_names

__all__ = ["ALL_EXPERIMENTS", "resolve_experiment", "runs", "scope_text", "select_run_ids"]

ALL_EXPERIMENTS = "*"

_TIME_ATTRS = {"start_time", "end_time"}


class _Compiler:
    """Turns a query tree into SQLAlchemy expressions over ``runs`` joined to ``experiments``.

    Each metric, param or tag a query names becomes one LEFT OUTER JOIN on (run, key), so
    filtering and ordering use the tables' primary keys and indexes instead of one
    correlated subquery per run and field.
    """

    def __init__(self, text: str, joins: dict[tuple[str, str], sa.Alias]):
        self.text = text
        self.joins = joins

    def attr(self, key: str) -> sa.ColumnElement[Any]:
        if key == "experiment":
            return schema.experiments.c.name
        return schema.runs.c[key]

    def _alias(self, namespace: str, key: str) -> sa.Alias:
        found = self.joins.get((namespace, key))
        if found is None:
            table = {"metrics": schema.latest_metrics, "params": schema.params}.get(
                namespace, schema.tags
            )
            found = self.joins[(namespace, key)] = table.alias(f"{namespace[0]}{len(self.joins)}")
        return found

    def field(self, node: q.Field, numeric: bool) -> sa.ColumnElement[Any]:
        if node.namespace == "attr":
            return self.attr(node.key)
        alias = self._alias(node.namespace, node.key)
        if node.namespace == "params":
            return alias.c.num if numeric else alias.c.value
        return alias.c.value

    def value(self, node: q.Node, numeric: bool, time: bool = False) -> sa.ColumnElement[Any]:
        if isinstance(node, q.Literal):
            value = node.value
            if time and value is not None:
                value = q.parse_time(value, self.text, node.pos)
            elif isinstance(value, bool) and numeric:
                value = float(value)
            elif not numeric and isinstance(value, int | float) and not isinstance(value, bool):
                value = str(value)  # compared with a text column: compare as text everywhere
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

    def order(self, node: q.Field, desc: bool) -> list[sa.ColumnElement[Any]]:
        keys = [self.field(node, numeric=node.namespace != "tags")]
        if node.namespace == "params":  # numbers first by value, then text params by text
            keys.append(self.field(node, numeric=False))
        return [(k.desc() if desc else k.asc()).nulls_last() for k in keys]


def _names_experiment(tree: q.Node) -> bool:
    """Whether a filter's syntax tree refers to the ``experiment`` attribute."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, q.Field) and node.namespace == "attr" and node.key == "experiment":
            return True
        stack.extend(q._children(node))
    return False


def resolve_experiment(experiment: str | None, filter: str | None = None) -> str | None:
    """The experiment ``runs(experiment, filter)`` reads; ``None`` means every experiment.

    ``None`` gives the default experiment (where runs go when none is named), unless the
    filter names ``experiment`` itself; ``"*"`` gives every experiment.
    """
    if experiment == ALL_EXPERIMENTS:
        return None
    if experiment is not None:
        if not isinstance(experiment, str) or not experiment.strip():
            raise ValidationError(
                f"experiment must be an experiment name or '*' for all, got {experiment!r}."
            )
        return experiment
    if filter and filter.strip() and _names_experiment(q.parse(filter)):
        return None
    return default_experiment()


def scope_text(experiment: str | None) -> str:
    """How a view's header names a resolved scope: "experiment 'x'" or "all experiments"."""
    return "all experiments" if experiment is None else f"experiment '{experiment}'"


def select_run_ids(
    experiment: str | None = None,
    filter: str | None = None,
    order_by: str | list[str] | None = None,
    limit: int | None = None,
) -> sa.Select[Any]:
    """The SELECT of run rows (runs + experiment name) for these arguments.

    ``experiment`` here is a resolved scope (see ``resolve_experiment``): ``None`` selects
    runs of every experiment.
    """
    r, e = schema.runs, schema.experiments
    joins: dict[tuple[str, str], sa.Alias] = {}
    where = []
    order = []
    if experiment is not None:
        where.append(e.c.name == experiment)
    if filter and filter.strip():
        where.append(_Compiler(filter, joins).condition(q.parse(filter)))
    if order_by:
        compiler = _Compiler(str(order_by), joins)
        order = [key for f, d in q.parse_order(order_by) for key in compiler.order(f, d)]
    source = r.join(e, e.c.experiment_id == r.c.experiment_id)
    for (_namespace, key), alias in joins.items():
        source = source.outerjoin(alias, sa.and_(alias.c.run_id == r.c.run_id, alias.c.key == key))
    stmt = sa.select(
        r.c.run_id,
        r.c.name,
        e.c.name.label("experiment"),
        r.c.status,
        r.c.start_time,
        r.c.end_time,
        r.c.duration_s,
        r.c.parent_run_id,
        r.c.user,
        r.c.summary,
    ).select_from(source)
    if where:
        stmt = stmt.where(*where)
    stmt = stmt.order_by(*order, r.c.start_time.desc(), r.c.run_id)
    if limit is not None:
        if not isinstance(limit, int) or limit < 0:
            raise QueryError(f"limit must be a non-negative integer, got {limit!r}")
        stmt = stmt.limit(limit)
    return stmt


# What README's filter language calls the attributes, in its order: every one a column.
_BASE_COLUMNS = list(q.ATTRIBUTES)
_ALL_PARAMS = "all"


def runs(
    experiment: str | None = None,
    filter: str | None = None,
    order_by: str | list[str] | None = None,
    limit: int | None = None,
    *,
    params: str | None = None,
    store: Store | None = None,
) -> Any:
    """Runs as a DataFrame: one row per run, its attributes (``run_id name experiment status
    start_time end_time duration_s parent_run_id user``), then ``params.*``, ``metrics.*``
    and ``tags.*`` columns.

    ``experiment``: ``None`` for the default experiment's runs (unless ``filter`` names
    ``experiment``), ``"*"`` for every experiment's, or a name; the frame's
    ``attrs["experiment"]`` holds the scope read (``None``: all). ``filter`` uses the query language of ``jupyter_mlops.tracking.query``; ``order_by``
    takes ``"-metrics.accuracy"`` or ``"metrics.accuracy desc"`` (default: newest first).

    ``params``: by default the params worth a column, those whose values differ between
    the returned runs or from their estimator's defaults, and any ``filter``/``order_by``
    names (a pipeline's dozens of untouched defaults are left out; every param stays
    stored and filterable); ``"all"`` for every one. ``attrs["hidden_params"]`` lists the
    columns the default leaves out.
    """
    import pandas as pd

    if params is not None and params != _ALL_PARAMS:
        raise ValidationError(
            f"params must be None (the params that vary or differ from their defaults) or "
            f"'all', got {params!r}."
        )
    store = store or current_store()
    experiment = resolve_experiment(experiment, filter)
    stmt = select_run_ids(experiment, filter, order_by, limit)
    if not store.exists:
        empty = pd.DataFrame(columns=_BASE_COLUMNS)
        empty.attrs["experiment"] = experiment
        empty.attrs["hidden_params"] = []
        return empty
    every = experiment is None and not (filter and filter.strip()) and limit is None
    unmarked: list[tuple[Any, ...]] = []
    with store.read() as conn:
        rows = _raw(conn, stmt)
        ids = [row[0] for row in rows]
        legacy = [row[0] for row in rows if row[_SUMMARY] is None]
        if legacy:  # runs recorded before run summaries existed
            p, m, t = schema.params, schema.latest_metrics, schema.tags
            every = every and len(legacy) == len(ids)
            found = _attached(
                conn, [p.c.run_id, p.c.key, p.c.value, p.c.num, p.c.vtype], legacy, every
            )
            metrics = _attached(conn, [m.c.run_id, m.c.key, m.c.value], legacy, every)
            tags = _attached(conn, [t.c.run_id, t.c.key, t.c.value], legacy, every)
        # One parse for all summaries: far cheaper than one json.loads per run.
        summaries = json.loads("[" + ",".join(row[_SUMMARY] or "null" for row in rows) + "]")
        older = [rid for rid, s in zip(ids, summaries, strict=True) if s and "d" not in s]
        if older:  # summaries written before they listed the params left at defaults
            unmarked = _default_tags(conn, older)
    frame = pd.DataFrame([row[:_SUMMARY] for row in rows], columns=_BASE_COLUMNS)
    for column in ("start_time", "end_time"):
        frame[column] = pd.to_datetime(frame[column], unit="s", utc=True)
    for column in ("parent_run_id", "user"):  # None, not NaN, where there is none
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    position = {rid: i for i, rid in enumerate(ids)}
    if legacy:
        for rid, key, value, num, vtype in found:
            _fill(
                summaries,
                position[rid],
                "p",
                key,
                num if vtype in ("int", "float") else decode_param(value, vtype),
            )
        for rid, key, value in metrics:
            _fill(summaries, position[rid], "m", key, value)
        for rid, key, value in tags:
            if key == DEFAULT_PARAMS_TAG:
                _fill_defaults(summaries, position[rid], value)
            else:
                _fill(summaries, position[rid], "t", key, value)
    for rid, value in unmarked:
        _fill_defaults(summaries, position[rid], value)
    extra: dict[str, Any] = {}
    hidden: list[str] = []
    for part, prefix in (("p", "params"), ("m", "metrics"), ("t", "tags")):
        records = [(s or {}).get(part) or {} for s in summaries]
        if not any(records):
            continue
        wide = pd.DataFrame.from_records(records, index=frame.index)
        if part == "p":
            defaults = [(s or {}).get("d") or () for s in summaries]
            keep = _worth_a_column(wide, records, defaults) | _named_params(filter, order_by)
            hidden = [f"params.{k}" for k in sorted(wide.columns) if k not in keep]
            if params != _ALL_PARAMS:
                wide = wide[[k for k in wide.columns if k in keep]]
        for key in sorted(wide.columns):
            extra[f"{prefix}.{key}"] = _typed(wide[key], prefix)
    if extra:
        frame = pd.concat([frame, pd.DataFrame(extra, index=frame.index)], axis=1)
    frame.attrs["experiment"] = experiment
    frame.attrs["hidden_params"] = hidden
    return frame


_SUMMARY = len(_BASE_COLUMNS)  # the position of the summary in a selected row


def _worth_a_column(wide: Any, records: list[dict[str, Any]], defaults: list[Any]) -> set[str]:
    """The params that differ from their estimator's default in some run, or whose values
    differ between the runs (``None`` counts as a value; a run without the param does not).

    A param no run records as a default (one set in the code, a search's best value) is
    always worth a column; so is one a run has at another value than its default.
    """
    from collections import Counter
    from itertools import chain

    present = Counter(chain.from_iterable(records))
    at_default = Counter(chain.from_iterable(defaults))
    keep = {k for k, n in present.items() if n > at_default.get(k, 0)}
    for key in present.keys() - keep:
        column = wide[key]
        distinct = column.nunique(dropna=True) + (present[key] > column.notna().sum())
        if distinct > 1:
            keep.add(key)
    return keep


def _named_params(filter: str | None, order_by: str | list[str] | None) -> set[str]:
    """The params a filter or an ordering names: shown, whatever their values."""
    stack: list[q.Node] = [q.parse(filter)] if filter and filter.strip() else []
    if order_by:
        stack += [f for f, _ in q.parse_order(order_by)]
    out = set()
    while stack:
        node = stack.pop()
        if isinstance(node, q.Field) and node.namespace == "params":
            out.add(node.key)
        stack.extend(q._children(node))
    return out


def _default_tags(conn: sa.Connection, ids: list[str]) -> list[tuple[Any, ...]]:
    """(run id, recorded default params) for the runs in ``ids`` that recorded them."""
    t = schema.tags
    out: list[tuple[Any, ...]] = []
    for start in range(0, len(ids), _ID_BATCH):
        batch = ids[start : start + _ID_BATCH]
        query = sa.select(t.c.run_id, t.c.value).where(
            t.c.key == DEFAULT_PARAMS_TAG, t.c.run_id.in_(batch)
        )
        out += _raw(conn, query)
    return out


def _fill_defaults(summaries: list[Any], pos: int, recorded: str | None) -> None:
    if summaries[pos] is None:
        summaries[pos] = {"p": {}, "m": {}, "t": {}}
    summaries[pos]["d"] = default_param_names(recorded)


def _fill(summaries: list[Any], pos: int, part: str, key: str, value: Any) -> None:
    if summaries[pos] is None:
        summaries[pos] = {"p": {}, "m": {}, "t": {}}
    summaries[pos].setdefault(part, {})[key] = value


def _typed(column: Any, prefix: str) -> Any:
    """Metrics as float64; params as int64/float64 when every value is a number, else objects."""
    import pandas as pd

    if prefix == "metrics":
        return pd.to_numeric(column, errors="coerce").astype("float64")
    if prefix == "params" and column.dtype == object:
        present = column.dropna()
        if len(present) and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in present
        ):
            return column.astype("float64")
        return column.where(column.notna(), None)
    return column


def _raw(conn: sa.Connection, stmt: sa.Select[Any]) -> list[tuple[Any, ...]]:
    """Execute on the DB-API cursor: rows as plain tuples, without per-row Python objects."""
    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.construct_params()
    args: Any = [params[k] for k in compiled.positiontup] if compiled.positional else params
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(compiled.string, args)
        return cursor.fetchall()
    finally:
        cursor.close()


_ID_BATCH = 10_000


def _attached(
    conn: sa.Connection, columns: list[Any], ids: list[str], every: bool
) -> list[tuple[Any, ...]]:
    """Rows of a per-run table for the runs in ``ids`` (the whole table when ``every``)."""
    if not ids:
        return []
    if every:
        return _raw(conn, sa.select(*columns))
    out: list[tuple[Any, ...]] = []
    run_id = columns[0]
    for start in range(0, len(ids), _ID_BATCH):
        batch = ids[start : start + _ID_BATCH]
        out += _raw(conn, sa.select(*columns).where(run_id.in_(batch)))
    return out
