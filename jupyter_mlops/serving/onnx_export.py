"""``export --format onnx``: the model as an ONNX file, checked against the original.

The model's flavor converts it (skl2onnx for scikit-learn, with XGBoost and LightGBM
estimators registered so a pipeline ending in one converts too; onnxmltools for XGBoost
and LightGBM models). The export then verifies itself: the ONNX file runs in
onnxruntime on rows of the model's training data (or, when none was recorded, the
signature's example row) and must give the original's predictions: the same labels
(rows the original itself cannot separate, with two classes within the tolerance, are
counted and allowed), probabilities and values within a tolerance. A model that does not
convert, or whose conversion does not agree, is refused with an error naming why, and
nothing is written.

Inputs: a model of numeric columns takes one float tensor ``input`` of shape
``[N, columns]`` in the signature's column order; a model with text columns (or a
pipeline that picks its columns by name) takes one ``[N, 1]`` tensor per column, named as
the column (float for numbers, string for text).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import MlopsError, ValidationError

__all__ = ["ONNX_FILE", "OnnxCheck", "onnx_feed", "onnx_inputs", "write_onnx"]

ONNX_FILE = "model.onnx"
SAMPLE_ROWS = 1000
PROBA_TOLERANCE = 1e-4  # absolute, on probabilities
VALUE_TOLERANCE = 1e-4  # relative to the scale of the predictions (at least 1)


@dataclass
class OnnxCheck:
    """How the ONNX file agreed with the original on the sample rows."""

    rows: int
    source: str
    kind: str  # "classifier" | "regressor"
    layout: str  # "tensor": one float tensor named input; "columns": one tensor per column
    max_abs_diff: float
    tolerance: float
    labels_equal: int | None = None  # rows whose label matches
    ties: int = 0  # rows the original cannot separate (allowed to differ)
    inputs: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "source": self.source,
            "kind": self.kind,
            "layout": self.layout,
            "max_abs_diff": self.max_abs_diff,
            "tolerance": self.tolerance,
            "labels_equal": self.labels_equal,
            "ties": self.ties,
            "inputs": self.inputs,
            "outputs": self.outputs,
        }


def _tools() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        raise MlopsError(
            f"ONNX export needs onnx and onnxruntime ({exc.name} is not installed here): "
            "pip install 'jupyter_mlops[onnx]', then export again."
        ) from exc


def _numeric(dtype: str) -> bool:
    from ..tracking.estimators import dtype_kind

    return dtype == "unknown" or dtype_kind(dtype) in ("int", "float", "bool")


def _selects_by_name(model: Any) -> bool:
    """Whether a scikit-learn model holds a ColumnTransformer choosing columns by name
    (skl2onnx then needs one input per column, named as the column)."""
    try:
        from sklearn.compose import ColumnTransformer
    except ImportError:  # pragma: no cover - scikit-learn is a dependency
        return False
    parts = [model]
    get_params = getattr(model, "get_params", None)
    if callable(get_params):
        try:
            parts += list(get_params(deep=True).values())
        except Exception:
            pass
    for part in parts:
        if isinstance(part, ColumnTransformer):
            for _, _, columns in part.transformers:
                items = [columns] if isinstance(columns, str) else columns
                if isinstance(items, list | tuple) and any(isinstance(c, str) for c in items):
                    return True
    return False


def onnx_inputs(model: Any, signature: dict[str, Any]) -> Any:
    """The ONNX inputs for a model with ``signature`` (see the module docstring)."""
    from ..tracking.flavors.base import OnnxInputs

    inputs = signature.get("inputs") or []
    if not inputs:
        raise ValidationError(
            "The model version records no input columns, so its ONNX inputs are unknown; "
            "register it again from a %%track cell (or mlops.log_model with the data)."
        )
    columns = []
    for item in inputs:
        dtype = str(item.get("dtype", "unknown"))
        kind = "float" if _numeric(dtype) and not item.get("pandas_category") else "string"
        columns.append((str(item["name"]), kind))
    single = all(k == "float" for _, k in columns) and not _selects_by_name(model)
    return OnnxInputs(columns=columns, single=single)


def onnx_feed(frame: Any, inputs: Any) -> dict[str, Any]:
    """The onnxruntime feed for rows ``frame`` (a DataFrame with the input columns)."""
    import numpy as np

    names = [name for name, _ in inputs.columns]
    if inputs.single:
        return {"input": frame[names].to_numpy(dtype=np.float32, na_value=np.nan)}
    feed = {}
    for name, kind in inputs.columns:
        column = frame[[name]]
        if kind == "float":
            feed[name] = column.to_numpy(dtype=np.float32, na_value=np.nan)
        else:
            feed[name] = column.astype(str).to_numpy(dtype=object)
    return feed


def _sample(mv: Any, store: Any, features: list[str]) -> tuple[Any, str]:
    """Rows to verify on: up to SAMPLE_ROWS of a recorded training data version holding
    the input columns, else the signature's example row."""
    import numpy as np
    import pandas as pd

    from ..data.versions import load_data

    recorded = [d for d in mv.data or [] if d.get("ref")]
    recorded.sort(key=lambda d: list(d.get("shape") or [])[1:] != [len(features)])
    for item in recorded:
        try:
            frame = load_data(item["ref"], store)
        except MlopsError:
            continue
        if isinstance(frame, np.ndarray) and frame.ndim == 2 and frame.shape[1] == len(features):
            frame = pd.DataFrame(frame, columns=features)  # a model fitted on an array
        if isinstance(frame, pd.DataFrame) and features and all(c in frame for c in features):
            rows = frame[features]
            if len(rows) > SAMPLE_ROWS:
                rows = rows.sample(SAMPLE_ROWS, random_state=0)
            if len(rows):
                return rows, f"{len(rows)} rows of {item['ref']}"
    from .example import example_row

    row = example_row(mv, store)
    frame = pd.DataFrame([row])[features]
    return frame, "the signature's example row"


def _typed(frame: Any, signature: dict[str, Any], model: Any) -> Any:
    """The sample as the served model takes it: an array for a model fitted on one, else
    the frame with the flavor's input step applied."""
    from ..tracking.flavors import flavor_for

    if signature.get("input_kind") == "ndarray":
        return frame.to_numpy()
    flavor = flavor_for(model)
    adapt = flavor.input_adapter(signature) if flavor is not None else None
    return adapt(frame) if adapt is not None else frame


def _flavor(mv: Any, model: Any) -> Any:
    from ..tracking.flavors import flavor_for

    flavor = flavor_for(model)
    if flavor is None:
        what = f"{type(model).__module__}.{type(model).__qualname__}"
        raise ValidationError(
            f"Model {mv.ref} is a {what}, which no ONNX converter takes (ONNX export covers "
            "scikit-learn, XGBoost and LightGBM models); export it with --format docker."
        )
    return flavor


def _convert(mv: Any, model: Any, inputs: Any) -> Any:
    flavor = _flavor(mv, model)
    what = f"{type(model).__module__}.{type(model).__qualname__}"
    try:
        return flavor.to_onnx(model, inputs)
    except ImportError as exc:
        raise MlopsError(
            f"Converting {mv.ref} to ONNX needs {exc.name or 'the ONNX converters'}: "
            "pip install 'jupyter_mlops[onnx]', then export again."
        ) from exc
    except Exception as exc:
        step = _step(exc)
        raise ValidationError(
            f"Model {mv.ref} ({what}) cannot be converted to ONNX: {step}. Nothing was "
            "written. Export it with --format docker or mlflow, which serve it as it is."
        ) from exc


def _step(exc: Exception) -> str:
    """What the converter could not convert, from its error."""
    import re

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = text.rstrip(".")
    found = re.search(r"type '?<class '([^']+)'>'?", str(exc)) or re.search(
        r"for type '?([\w.]+)'?", str(exc)
    )
    if type(exc).__name__ == "MissingShapeCalculator" and found:
        return f"no ONNX converter for the step {found.group(1)}"
    if isinstance(exc, NotImplementedError):
        return text
    return f"{type(exc).__name__}: {text[:300]}"


def _run(data: bytes, feed: dict[str, Any]) -> tuple[list[str], list[Any]]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # no warnings about declared output shapes
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return names, session.run(None, feed)


def _verify(mv: Any, model: Any, data: bytes, frame: Any, source: str, inputs: Any) -> OnnxCheck:
    """Run the ONNX file on ``frame`` and compare with the original's predictions."""
    import numpy as np

    from ..tracking.flavors import flavor_for

    flavor = flavor_for(model)
    served = flavor.servable(model) if flavor is not None else model
    typed = _typed(frame, mv.signature or {}, model)
    try:
        names, outputs = _run(data, onnx_feed(frame, inputs))
    except Exception as exc:
        raise ValidationError(
            f"The ONNX conversion of {mv.ref} does not run in onnxruntime "
            f"({type(exc).__name__}: {str(exc)[:300]}); nothing was written. Export it with "
            "--format docker instead."
        ) from exc

    def refuse(what: str) -> ValidationError:
        return ValidationError(
            f"The ONNX conversion of {mv.ref} does not give the original's predictions on "
            f"{source}: {what}. Nothing was written; export it with --format docker or "
            "mlflow, which serve the model as it is."
        )

    described = [{"name": n, "type": k} for n, k in inputs.columns]
    classes = getattr(served, "classes_", None)
    if callable(getattr(served, "predict_proba", None)) and classes is not None:
        if len(outputs) < 2:
            raise refuse(f"it has outputs {names}, not a label and probabilities")
        expected = np.asarray(served.predict_proba(typed), dtype=float)
        got = np.asarray(outputs[1], dtype=float).reshape(expected.shape)
        diff = float(np.max(np.abs(got - expected))) if expected.size else 0.0
        labels = np.asarray(served.predict(typed)).ravel()
        onnx_labels = np.asarray(outputs[0]).ravel()
        same = labels.astype(str) == onnx_labels.astype(str)
        top = np.sort(expected, axis=1)
        tied = (top[:, -1] - top[:, -2] <= 2 * PROBA_TOLERANCE) if top.shape[1] > 1 else ~same
        if diff > PROBA_TOLERANCE:
            rows = int(np.sum(np.max(np.abs(got - expected), axis=1) > PROBA_TOLERANCE))
            raise refuse(
                f"probabilities differ by up to {diff:.3g} on {rows} of {len(expected)} rows "
                f"(tolerance {PROBA_TOLERANCE}; ONNX computes in float32, so a step before "
                "a tree model that rounds differently moves rows across its splits)"
            )
        if not np.all(same | tied):
            wrong = int(np.sum(~same & ~tied))
            raise refuse(f"{wrong} of {len(labels)} labels differ")
        return OnnxCheck(
            rows=len(frame),
            source=source,
            kind="classifier",
            layout="tensor" if inputs.single else "columns",
            max_abs_diff=diff,
            tolerance=PROBA_TOLERANCE,
            labels_equal=int(same.sum()),
            ties=int(np.sum(~same)),
            inputs=described,
            outputs=names,
        )
    expected = np.asarray(served.predict(typed), dtype=float)
    if expected.ndim == 1 and len(outputs) >= 2 and np.ndim(outputs[1]) == 2:
        # a Booster with a logistic objective: its output is the positive class's probability
        probabilities = np.asarray(outputs[1], dtype=float)
        got = probabilities[:, -1] if probabilities.shape[1] == 2 else probabilities
    else:
        got = np.asarray(outputs[0], dtype=float)
    if got.size != expected.size:
        raise refuse(f"{got.size} values for {expected.size} expected")
    got = got.reshape(expected.shape)
    scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
    tolerance = VALUE_TOLERANCE * scale
    diff = float(np.max(np.abs(got - expected))) if expected.size else 0.0
    if not diff <= tolerance:
        raise refuse(f"predictions differ by up to {diff:.3g} (tolerance {tolerance:.3g})")
    return OnnxCheck(
        rows=len(frame),
        source=source,
        kind="regressor",
        layout="tensor" if inputs.single else "columns",
        max_abs_diff=diff,
        tolerance=tolerance,
        inputs=described,
        outputs=names,
    )


def write_onnx(folder: Path, mv: Any, model: Any, store: Any) -> OnnxCheck:
    """Convert ``model`` (version ``mv``), verify it and write ``model.onnx`` into
    ``folder``; raises before writing anything when it does not convert or agree."""
    _tools()
    import onnx

    signature = mv.signature or {}
    _flavor(mv, model)
    inputs = onnx_inputs(model, signature)
    proto = _convert(mv, model, inputs)
    features = [name for name, _ in inputs.columns]
    for key, value in {
        "model": mv.name,
        "version": str(mv.version),
        "run_id": str(mv.run_id),
        "columns": json.dumps(features),
        "exported_by": "jupyter_mlops",
    }.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    data = proto.SerializeToString()
    try:
        onnx.checker.check_model(proto)
    except Exception as exc:
        raise ValidationError(
            f"The ONNX conversion of {mv.ref} is not a valid ONNX model ({exc}); nothing "
            "was written. Export it with --format docker instead."
        ) from exc
    frame, source = _sample(mv, store, features)
    check = _verify(mv, model, data, frame, source, inputs)
    (folder / ONNX_FILE).write_bytes(data)
    return check
