"""Batch scoring: a DataFrame in, a DataFrame of predictions out, in chunks.

The batch is logged as data versions (the input as a version of dataset
``inference/<model>/inputs`` and the predictions as ``inference/<model>/predictions``)
plus one inference-log entry, not row by row. By default each version is *recorded*:
content hash, schema and per-column statistics, without the rows, which costs a fraction
of the prediction; ``snapshot=True`` stores the rows too (a full, deduplicated snapshot
that ``mlops.load_data`` reads back). The input is recorded in a thread while the model
predicts, so logging overlaps the work it records.
"""

from __future__ import annotations

import threading
import time
import uuid
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import ValidationError
from ..store import Store, current_store
from .inference_log import log_batch
from .model import FEATURE_NAMES_WARNING, cached_model
from .signature import MissingValuesError

__all__ = ["predict_batch"]


def predict_batch(
    reference: str,
    data: Any,
    *,
    chunk_size: int = 250_000,
    proba: bool = False,
    log: bool = True,
    snapshot: bool = False,
    trusted: bool | list[str] = False,
    skip_missing: bool = False,
    progress: Callable[[int], Any] | None = None,
    store: Store | None = None,
) -> Any:
    """Score ``data`` with a registered model; returns a DataFrame with the input's index,
    a ``prediction`` column and, with ``proba=True``, one ``proba_<class>`` column per class.

    Rows with a missing value (null, NaN) in a column the model cannot take one in are
    refused, as the server refuses them: a ``MissingValuesError`` names them by index
    label and scores nothing. ``skip_missing=True`` scores the other rows instead: the
    refused rows get a missing prediction and their labels are in ``.attrs["skipped"]``.

    ``log=True`` records the batch in the inference log with its input and predictions
    as data versions: by content hash, schema and statistics (``DataVersion.rows_stored``
    is False), or, with ``snapshot=True``, as full snapshots whose rows can be loaded back
    (the same frame twice is stored once; a full snapshot of a frame scored before stores
    its rows under the version already recorded). ``progress`` is called with the total
    row count and returns an object with ``update(n)`` and ``close()`` (a tqdm bar).
    ``.attrs`` of the result hold the model version, the batch's request id and the data
    versions it was logged as.
    """
    import pandas as pd

    from ..data.versions import snapshot as save_version

    store = store or current_store()
    if chunk_size < 1:
        raise ValidationError("chunk_size must be at least 1.")
    from ..registry.service import get_model_version

    served = cached_model(get_model_version(reference, store), trusted=trusted)
    if isinstance(data, pd.Series):
        data = data.to_frame().T if served.schema.names else data.to_frame()
    n = len(data)
    index = data.index if isinstance(data, pd.DataFrame) else pd.RangeIndex(n)
    kept: np.ndarray | None = None  # the rows scored, when some were skipped
    try:
        frame = served.schema.check_frame(data)
    except MissingValuesError as exc:
        if not skip_missing:
            raise MissingValuesError(
                exc.columns,
                exc.total,
                labels=exc.labels,
                hint="or pass skip_missing=True to score the others",
            ) from None
        kept = np.ones(n, dtype=bool)
        kept[exc.rows] = False
        if not kept.any():
            raise ValidationError(
                f"Every one of the {n} rows has a missing value the model cannot take "
                "(see mlops.predict_batch without skip_missing for where); nothing to score."
            ) from None
        frame = served.schema.check_frame(data[kept])
    started = time.perf_counter()
    request_id = "batch-" + uuid.uuid4().hex[:16]
    logged: dict[str, Any] = {}

    def log_inputs() -> None:
        try:
            logged["input"] = save_version(
                data,
                f"inference/{served.name}/inputs",
                store=store,
                reuse_any=True,
                store_rows=snapshot,
            )
        except BaseException as exc:  # reported after predicting
            logged["error"] = exc

    thread = None
    if log:
        thread = threading.Thread(target=log_inputs, name="mlops-batch-log", daemon=True)
        thread.start()
    outputs = ("predict", "predict_proba") if proba else ("predict",)
    scored = len(frame)
    bar = progress(scored) if progress is not None else None
    parts: dict[str, list[np.ndarray]] = {k: [] for k in outputs}
    try:
        for start in range(0, scored, chunk_size):
            chunk = frame[start : start + chunk_size]
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=FEATURE_NAMES_WARNING)
                result = served.predict(chunk, outputs)
            for key in outputs:
                parts[key].append(result[key])
            if bar is not None:
                bar.update(min(chunk_size, scored - start))
    finally:
        if bar is not None:
            bar.close()
    columns: dict[str, Any] = {"prediction": np.concatenate(parts["predict"])}
    if proba:
        probs = np.concatenate(parts["predict_proba"])
        for j, label in enumerate(served.class_labels() or range(probs.shape[1])):
            columns[f"proba_{label}"] = probs[:, j]
    if kept is None:
        result_frame = pd.DataFrame(columns, index=index)
    else:  # the skipped rows keep their place, with a missing prediction
        result_frame = pd.DataFrame(columns, index=index[kept]).reindex(index)
    result_frame.attrs["model_version"] = served.ref
    result_frame.attrs["request_id"] = request_id
    result_frame.attrs["skipped"] = [] if kept is None else index[~kept].tolist()
    if log:
        assert thread is not None
        # the predictions are recorded while the input's thread may still be hashing
        out_version = save_version(
            result_frame,
            f"inference/{served.name}/predictions",
            store=store,
            reuse_any=True,
            store_rows=snapshot,
        )
        thread.join()
        if "error" in logged:
            raise logged["error"]
        latency_ms = (time.perf_counter() - started) * 1000.0
        log_batch(
            store,
            request_id=request_id,
            name=served.name,
            version=served.version,
            rows=n,
            input_version_id=logged["input"].version_id,
            output_version_id=out_version.version_id,
            latency_ms=latency_ms,
        )
        result_frame.attrs["input_version"] = logged["input"].ref
        result_frame.attrs["output_version"] = out_version.ref
    return result_frame
