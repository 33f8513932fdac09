"""Benchmark 6: the model registry: registering a tracked run's model, and loading a model
by alias, side by side with MLflow's registry (SQLite backend).

* jupyter_mlops: a LogisticRegression fitted in a ``%%track`` cell (model saved); time
  ``mlops.register(run_id, "churn")``; then ``mlops.load_model("churn@production")``.
* MLflow: the same model logged once with ``mlflow.sklearn.log_model`` (timed apart, for
  information: it infers pip requirements); time ``mlflow.register_model`` of that run's
  model, then ``mlflow.sklearn.load_model("models:/churn@production")``.

Targets: load_model >= 2x faster, register >= 2x faster than MLflow.
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

from _common import emit_part, finish, log, median, ms, now, parser, row, run_part

SCRIPT = "bench_registry.py"


def _data():
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    frame = load_breast_cancer(as_frame=True).frame
    X, y = frame.drop(columns="target"), frame.target
    X = (X - X.mean()) / X.std()
    return LogisticRegression, X, y


def part_ours(quick: bool) -> None:
    reps = 10 if quick else 50
    LogisticRegression, X, y = _data()
    import jupyter_mlops as mlops

    mlops.open_store(Path.cwd() / "store")
    with mlops.track("train", experiment="bench") as run:
        model = LogisticRegression().fit(X, y)
        accuracy = model.score(X, y)
    del accuracy
    mlops.register(run.run_id, "warm")  # store and imports warm
    register = []
    for _ in range(reps):
        t = now()
        mv = mlops.register(run.run_id, "churn")
        register.append(now() - t)
    mlops.set_alias("churn", "production", mv.version)
    mlops.load_model("churn@production")
    load = []
    for _ in range(reps):
        t = now()
        loaded = mlops.load_model("churn@production")
        load.append(now() - t)
    assert (loaded.predict(X) == model.predict(X)).all()
    emit_part({"register_ms": ms(median(register)), "load_ms": ms(median(load)), "reps": reps})


def part_mlflow(quick: bool) -> None:
    reps = 5 if quick else 15
    LogisticRegression, X, y = _data()
    import mlflow
    import mlflow.sklearn

    warnings.filterwarnings("ignore")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    mlflow.set_tracking_uri(f"sqlite:///{Path.cwd() / 'mlflow.db'}")
    mlflow.set_experiment("bench")
    model = LogisticRegression().fit(X, y)
    with mlflow.start_run() as run:
        t = now()
        info = mlflow.sklearn.log_model(model, name="model", input_example=X.head(3))
        log_model_s = now() - t
    uri = info.model_uri if hasattr(info, "model_uri") else f"runs:/{run.info.run_id}/model"
    mlflow.register_model(uri, "warm")
    register = []
    for _ in range(reps):
        t = now()
        version = mlflow.register_model(uri, "churn")
        register.append(now() - t)
    client = mlflow.MlflowClient()
    client.set_registered_model_alias("churn", "production", version.version)
    mlflow.sklearn.load_model("models:/churn@production")
    load = []
    for _ in range(reps):
        t = now()
        loaded = mlflow.sklearn.load_model("models:/churn@production")
        load.append(now() - t)
    assert (loaded.predict(X) == model.predict(X)).all()
    emit_part(
        {
            "register_ms": ms(median(register)),
            "load_ms": ms(median(load)),
            "log_model_ms": ms(log_model_s),
            "reps": reps,
        }
    )


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    if args.part == "ours":
        return part_ours(args.quick)
    if args.part == "mlflow":
        return part_mlflow(args.quick)
    started = time.time()
    log(f"{SCRIPT}: jupyter_mlops ...")
    ours = run_part(SCRIPT, "ours", quick=args.quick)
    log(f"{SCRIPT}: MLflow ...")
    mlf = run_part(SCRIPT, "mlflow", quick=args.quick)
    rows = [
        row(
            "6. load_model('churn@production')",
            ours["load_ms"],
            mlf["load_ms"],
            target="≥2×",
            ok=mlf["load_ms"] / ours["load_ms"] >= 2,
        ),
        row(
            "6b. register a tracked run's model",
            ours["register_ms"],
            mlf["register_ms"],
            target="≥2×",
            ok=mlf["register_ms"] / ours["register_ms"] >= 2,
        ),
        row(
            "6c. register vs MLflow log_model + register_model",
            ours["register_ms"],
            mlf["log_model_ms"] + mlf["register_ms"],
            target="(info)",
        ),
    ]
    notes = [
        f"medians over {ours['reps']} (ours) and {mlf['reps']} (MLflow) calls after a warm-up; "
        "our register includes the model card data (signature, requirements, data versions)",
        f"MLflow log_model (with input example, requirements inferred) took {mlf['log_model_ms']:.0f} ms once",
    ]
    finish(SCRIPT, rows, notes, time.time() - started)


if __name__ == "__main__":
    main()
