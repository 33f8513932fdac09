"""A model's input signature as the server enforces it: the columns it takes, their types,
and whether missing values are allowed, turned into a frame the model can predict on.

Requests arrive as JSON columns (lists of Python values) or CSV; every value is checked
before the model sees it, so a bad request gets a message naming the column and row
instead of a stack trace from inside the estimator.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ValidationError

__all__ = ["Column", "InputSchema", "MissingValuesError", "SignatureError", "oip_datatype"]


class SignatureError(ValidationError):
    """A request does not match the model's input signature (HTTP 422)."""

    code = "signature"
    reason = "schema"  # what a rejected request is counted as in monitoring


class MissingValuesError(SignatureError):
    """Rows have missing values (null, NaN) in columns the model cannot take them in.

    ``columns`` maps each such column to its row positions, ``rows`` is every offending
    row (sorted), ``total`` the rows sent: a client can send the other rows again."""

    reason = "missing_value"

    def __init__(
        self, columns: dict[str, list[int]], total: int, labels: Any = None, hint: str = ""
    ):
        self.columns = {name: [int(r) for r in rows] for name, rows in columns.items()}
        self.rows = sorted({r for rows in self.columns.values() for r in rows})
        self.total = total
        self.labels = labels
        if labels is not None and _is_range(labels):
            labels = None  # labels 0, 1, 2, ... are the positions
        super().__init__(_missing_message(self.columns, self.rows, total, labels, hint))


def _rows_text(rows: list[int], labels: Any = None, limit: int = 20) -> str:
    """``row 3`` / ``rows [3, 17]`` (positions), or the rows' index labels when a frame has
    an index of its own; at most ``limit`` listed."""
    shown = [labels[r] for r in rows[:limit]] if labels is not None else rows[:limit]
    shown = [v.item() if hasattr(v, "item") else v for v in shown]
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    if labels is not None:
        return f"the row{'s' * (len(rows) > 1)} labelled {shown}{more}"
    return f"row {shown[0]}" if len(rows) == 1 else f"rows {shown}{more}"


def _is_range(labels: Any) -> bool:
    import pandas as pd

    return isinstance(labels, pd.RangeIndex) and labels.start == 0 and labels.step == 1


def _missing_message(
    columns: dict[str, list[int]],
    rows: list[int],
    total: int,
    labels: Any = None,
    hint: str = "",
) -> str:
    fine = total - len(rows)
    others = (
        ""
        if not fine
        else "the other row is fine"
        if fine == 1
        else f"the other {fine} of {total} rows are fine"
    )
    notes = "; ".join(n for n in (others, hint) if n)
    advice = (
        "send a value there, or leave "
        + ("that row" if len(rows) == 1 else "those rows")
        + " out"
        + (f" ({notes})" if notes else "")
        + "."
    )
    if len(columns) == 1:
        name, where = next(iter(columns.items()))
        return (
            f"Column {name!r} has missing values (null or NaN) in {_rows_text(where, labels)}, "
            f"and this model cannot take them in that column; {advice}"
        )
    each = "; ".join(
        f"column {name!r} in {_rows_text(where, labels, 10)}" for name, where in columns.items()
    )
    return (
        f"{len(rows)} of {total} rows have missing values (null or NaN) in columns this model "
        f"cannot take them in: {each}; {advice}"
    )


_OIP = {
    "f8": "FP64",
    "f4": "FP32",
    "f2": "FP16",
    "i8": "INT64",
    "i4": "INT32",
    "i2": "INT16",
    "i1": "INT8",
    "u8": "UINT64",
    "u4": "UINT32",
    "u2": "UINT16",
    "u1": "UINT8",
    "b1": "BOOL",
}


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _kind(dtype: str) -> str:
    """One of float, int, bool, text, any for a pandas/numpy dtype name."""
    text = dtype.lower()
    if text.startswith(("float", "double")):
        return "float"
    if text.startswith(("int", "uint", "int64")):
        return "int"
    if text.startswith("bool"):
        return "bool"
    if text in ("object", "str", "string", "category") or text.startswith(("string", "str")):
        return "text"
    return "any"


def oip_datatype(dtype: Any) -> str:
    """The Open Inference Protocol datatype of a numpy dtype (text is BYTES)."""
    try:
        d = np.dtype(dtype)
    except TypeError:
        return "BYTES"
    return _OIP.get(f"{d.kind}{d.itemsize}", "BYTES")


@dataclass(frozen=True)
class Column:
    """One input column: its name, the dtype it was fitted with, and its kind."""

    name: str
    dtype: str
    kind: str

    @property
    def datatype(self) -> str:
        """The OIP datatype clients should send."""
        return {"float": "FP64", "int": "INT64", "bool": "BOOL"}.get(self.kind, "BYTES")


def _bad(column: str, row: int, value: Any, wanted: str) -> SignatureError:
    shown = repr(value)
    if len(shown) > 40:
        shown = shown[:37] + "..."
    return SignatureError(f"Column {column!r} expects {wanted}; row {row} has {shown}.")


class InputSchema:
    """The columns a model takes, from its registered signature, and the checks on them.

    ``missing`` holds the columns the model takes missing values (null, NaN) in, decided
    when the model is loaded (``serving.missing``); ``allow_nan`` alone means all or none.
    """

    def __init__(
        self,
        columns: list[Column],
        *,
        allow_nan: bool,
        ndarray: bool,
        missing: Iterable[str] | None = None,
    ):
        self.columns = columns
        self.names = [c.name for c in columns]
        self.missing = (
            frozenset(self.names if allow_nan else ())
            if missing is None
            else (frozenset(missing) & frozenset(self.names))
        )
        # whether every column takes missing values (what model metadata reports)
        self.allow_nan = allow_nan if not columns else self.missing == frozenset(self.names)
        self.ndarray = ndarray
        # Rows go to the model as a 2-D array in signature order: models fitted on arrays,
        # and models ``model.probe_positional`` found to predict the same either way
        # (scikit-learn's DataFrame checks cost ~0.7 ms per call; our own checks already
        # enforced the names and types).
        self.positional = ndarray
        self._by_name = {c.name: c for c in columns}
        # whether ``frame`` and ``check_frame`` refuse every infinity and every NaN the
        # model cannot take (float and int columns; other kinds are not all checked)
        self.checks_finite = bool(columns) and all(c.kind in ("float", "int") for c in columns)
        self._all_float = bool(columns) and all(c.kind == "float" for c in columns)

    @classmethod
    def from_signature(
        cls, signature: dict[str, Any], model: Any = None, trained_with: Iterable[str] = ()
    ) -> InputSchema:
        """Build the schema from a model version's signature and the fitted model: which
        columns take missing values is read from the model's steps and from the columns
        the training data had missing values in (the signature's record, or
        ``trained_with`` for versions registered before it was recorded)."""
        from .missing import missing_value_columns, trained_with_missing

        inputs = signature.get("inputs") or []
        names = [str(i["name"]) for i in inputs]
        dtypes = [str(i.get("dtype", "unknown")) for i in inputs]
        if model is not None and "unknown" in dtypes:
            dtypes = _fill_unknown(model, dtypes)
        columns = [Column(n, d, _kind(d)) for n, d in zip(names, dtypes, strict=True)]
        kind = signature.get("input_kind")
        if kind in (None, "unknown") and model is not None and names:
            fitted_on_names = getattr(model, "feature_names_in_", None) is not None
            kind = "dataframe" if fitted_on_names else "ndarray"
        seen = trained_with_missing(signature) | set(trained_with)
        missing = missing_value_columns(model, names, seen) if model is not None else seen
        return cls(
            columns,
            allow_nan=_allows_nan(model),
            ndarray=kind == "ndarray",
            missing=missing if names else None,
        )

    def describe(self) -> list[dict[str, Any]]:
        """The inputs as OIP tensor metadata."""
        return [{"name": c.name, "datatype": c.datatype, "shape": [-1]} for c in self.columns]

    def check_names(self, names: list[str]) -> None:
        """Missing or unknown columns are an error naming both lists."""
        if not self.columns:
            return
        given = set(names)
        missing = [n for n in self.names if n not in given]
        unknown = [n for n in names if n not in self._by_name]
        if missing or unknown:
            parts = []
            if missing:
                parts.append(f"missing columns {missing}")
            if unknown:
                parts.append(f"unknown columns {unknown}")
            raise SignatureError(
                f"The request has {' and '.join(parts)}; the model takes {self.names}."
            )

    def _array(
        self, column: Column, values: list[Any], refused: dict[str, list[int]]
    ) -> np.ndarray:
        """The column as an array, checked value by value; the rows of missing values the
        model cannot take in this column go to ``refused`` (all columns are checked before
        a request is refused, so the error names every offending row)."""
        kind = column.kind
        takes_missing = column.name in self.missing
        if kind in ("float", "int", "bool"):
            for row, v in enumerate(values):
                if v is None or isinstance(v, bool):
                    continue
                if not isinstance(v, int | float) and not isinstance(v, np.number | np.bool_):
                    raise _bad(column.name, row, v, f"numbers ({column.dtype})")
        if kind == "float":
            try:
                arr = np.asarray(values, dtype=np.float64)
            except OverflowError:
                row = next(i for i, v in enumerate(values) if isinstance(v, int) and abs(v) > 1e308)
                raise _bad(column.name, row, values[row], "finite numbers") from None
        elif kind == "int":
            wanted = f"integers ({column.dtype})"
            nulls = []
            for row, v in enumerate(values):
                if v is None or (isinstance(v, float | np.floating) and math.isnan(v)):
                    nulls.append(row)
                    continue
                if isinstance(v, float | np.floating) and (not math.isfinite(v) or v != int(v)):
                    raise _bad(column.name, row, v, wanted)
                if not _INT64_MIN <= int(v) <= _INT64_MAX:
                    raise _bad(column.name, row, v, f"{wanted} within the 64-bit range")
            if nulls:  # the model takes them: numbers with NaN, as pandas holds them
                return self._with_missing(column, values, nulls, refused)
            return np.asarray([int(v) for v in values], dtype=np.int64)
        elif kind == "bool":
            nulls = []
            for row, v in enumerate(values):
                if v is None:
                    nulls.append(row)
                elif not isinstance(v, bool) and v not in (0, 1):
                    raise _bad(column.name, row, v, "true or false")
            if nulls:
                return self._with_missing(column, values, nulls, refused)
            return np.asarray(values, dtype=bool)
        elif kind == "text":
            nulls = []
            for row, v in enumerate(values):
                if v is None:
                    nulls.append(row)
                elif not isinstance(v, str):
                    raise _bad(column.name, row, v, "text")
            arr = np.asarray(values, dtype=object)
            if nulls:
                if takes_missing:  # NaN, as pandas holds a missing string (what fit saw)
                    arr[nulls] = math.nan
                else:
                    refused[column.name] = nulls
            return arr
        else:
            return np.asarray(values)
        # float: non-finite values
        bad = ~np.isfinite(arr)
        if bad.any():
            rows = np.flatnonzero(bad)
            if np.isinf(arr[rows]).any():
                row = int(rows[np.isinf(arr[rows])][0])
                raise _bad(column.name, row, values[row], "finite numbers")
            if not takes_missing:
                refused[column.name] = rows.tolist()
        return arr

    def _with_missing(
        self, column: Column, values: list[Any], nulls: list[int], refused: dict[str, list[int]]
    ) -> np.ndarray:
        """An int or bool column with nulls: float64 with NaN where the model takes them."""
        if column.name not in self.missing:
            refused[column.name] = nulls
            return np.zeros(len(values))
        return np.asarray([math.nan if v is None else float(v) for v in values], dtype=np.float64)

    def frame(self, columns: dict[str, list[Any]]) -> Any:
        """A frame (or 2-D array for models fitted on arrays) from validated JSON columns;
        ``MissingValuesError`` names every row with a missing value the model cannot take."""
        import pandas as pd

        names = list(columns)
        self.check_names(names)
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise ValidationError(
                f"Columns have different lengths {sorted(lengths)}; every column needs one "
                "value per row."
            )
        if not lengths or 0 in lengths:
            raise ValidationError("The request has no rows; send at least one row to predict.")
        if not self.columns:
            return pd.DataFrame(columns)
        if self.positional and self._all_float:
            matrix = _float_matrix([columns[n] for n in self.names])
            if matrix is not None:
                return matrix
        refused: dict[str, list[int]] = {}
        arrays = {c.name: self._array(c, columns[c.name], refused) for c in self.columns}
        if refused:
            raise MissingValuesError(refused, lengths.pop())
        if self.positional:
            return np.column_stack(list(arrays.values()))
        return pd.DataFrame(arrays, copy=False)

    def check_frame(self, frame: Any) -> Any:
        """Validate a frame given directly (batch scoring) and order its columns;
        ``MissingValuesError`` names (by index label) every row with a missing value the
        model cannot take."""
        import pandas as pd

        if not isinstance(frame, pd.DataFrame):
            if self.ndarray or not self.columns:
                return frame
            raise ValidationError(
                f"Expected a pandas DataFrame with columns {self.names}, got "
                f"{type(frame).__name__}."
            )
        self.check_names([str(c) for c in frame.columns])
        if len(frame) == 0:
            raise ValidationError("The frame has no rows; there is nothing to predict.")
        if not self.columns:
            return frame
        out = {}
        refused: dict[str, list[int]] = {}
        for c in self.columns:
            series = frame[c.name]
            plain = isinstance(series.dtype, np.dtype)
            if c.kind in ("float", "int", "bool") and series.dtype.kind not in "fiub":
                first = series.map(
                    lambda v: (
                        v is not None
                        and v == v  # NaN is a missing value, not a wrong type
                        and not isinstance(v, int | float | bool | np.number)
                    )
                )
                if first.any():
                    row = int(np.flatnonzero(first.to_numpy())[0])
                    raise _bad(c.name, row, series.iloc[row], f"numbers ({c.dtype})")
            if c.kind in ("float", "int", "bool") and not (plain and series.dtype.kind in "iub"):
                if plain and series.dtype.kind == "f":
                    raw = series.to_numpy()  # no copy; NaN and ±inf show in min or max
                    if np.isfinite(raw.min()) and np.isfinite(raw.max()):
                        out[c.name] = series
                        continue
                values = series.to_numpy(dtype=np.float64, na_value=np.nan)
                bad = ~np.isfinite(values)
                if bad.any():
                    rows = np.flatnonzero(bad)
                    if np.isinf(values[rows]).any():
                        row = int(rows[np.isinf(values[rows])][0])
                        raise _bad(c.name, row, series.iloc[row], "finite numbers")
                    if c.name not in self.missing:
                        refused[c.name] = rows.tolist()
            elif c.kind == "text" and c.name not in self.missing:
                nulls = series.isna().to_numpy()
                if nulls.any():
                    refused[c.name] = np.flatnonzero(nulls).tolist()
            out[c.name] = series
        if refused:
            raise MissingValuesError(refused, len(frame), labels=frame.index)
        if [str(c) for c in frame.columns] != self.names:  # in signature order
            frame = pd.DataFrame(out, copy=False)
        # positional: the frame's own array (a view when its columns share one block)
        return frame.to_numpy() if self.positional else frame


def _fill_unknown(model: Any, dtypes: list[str]) -> list[str]:
    """Dtypes for the columns of a signature recorded without them (stores written before
    dtypes were inferred): what the estimator says it takes, numbers where it says nothing
    (every scikit-learn estimator takes float64), so text is never advertised for them."""
    from ..tracking.estimators import NUMBER, column_hints

    try:
        hints: list[str | None] = column_hints(model, len(dtypes))
    except Exception:
        hints = [None] * len(dtypes)
    return [
        (h if h not in (None, NUMBER) else "float64") if d == "unknown" else d
        for d, h in zip(dtypes, hints, strict=True)
    ]


_PLAIN_NUMBERS = frozenset({float, int})


def _float_matrix(values: list[list[Any]]) -> np.ndarray | None:
    """Rows × columns float64 from JSON columns of plain finite numbers, converted in one
    call; None when anything needs a closer look (nulls, booleans, text, huge integers,
    non-finite values), which ``InputSchema._array`` then checks value by value."""
    for column in values:
        if not set(map(type, column)) <= _PLAIN_NUMBERS:
            return None
    try:
        matrix = np.array(values, dtype=np.float64)
    except (OverflowError, ValueError, TypeError):
        return None
    if not np.isfinite(matrix).all():
        return None
    return matrix.T


def _allows_nan(model: Any) -> bool:
    """Whether the estimator accepts NaN inputs (scikit-learn's ``allow_nan`` tag)."""
    if model is None:
        return False
    try:
        from sklearn.utils import get_tags

        return bool(get_tags(model).input_tags.allow_nan)
    except Exception:
        return False
