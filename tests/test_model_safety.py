"""Model files are untrusted input: crafted skops files run nothing on any load path.

Each vector is a skops file whose reduce node names a function that runs code; if it ran,
it would create a marker file. Every way the product loads a model is tried with each one:

- ``mlops.load_model(ref)`` and ``ModelVersion.load()`` (registry),
- ``Run.load_model()`` (tracking),
- ``mlops.predict_batch`` and a monitor's model (``serving.model.cached_model``),
- a deployment's own process (``mlops.deploy``),
- ``serving.model.load_directory`` of an exported folder (a shared folder, no store),
- ``mlops.export_model``,
- the champion a retraining job scores (``retraining.candidates``).
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
import sqlalchemy as sa
from sklearn.linear_model import LogisticRegression

import jupyter_mlops as mlops
from jupyter_mlops.errors import MlopsError, UntrustedModelError
from jupyter_mlops.store import current_store, schema
from jupyter_mlops.tracking.modelio import load_model_bytes, refused_types
from jupyter_mlops.tracking.trusted_types import TRUSTED_CLASSES, TRUSTED_FUNCTIONS

from .serving_helpers import training_frame


def _node(value: object) -> dict:
    """A skops node for a str, None, bool or a tuple of those (what skops itself writes)."""
    if isinstance(value, tuple):
        return {
            "__class__": "tuple",
            "__module__": "builtins",
            "__loader__": "TupleNode",
            "content": [_node(v) for v in value],
        }
    return {
        "__class__": type(value).__name__,
        "__module__": "builtins",
        "__loader__": "JsonNode",
        "content": json.dumps(value),
        "is_json": True,
    }


def reduce_file(target: str, args: tuple) -> bytes:
    """A skops file whose top node calls ``target(*args)`` when loaded."""
    module, _, name = target.rpartition(".")
    schema_ = {
        "__class__": name,
        "__module__": module,
        "__loader__": "ConstructorFromReduceNode",
        "content": _node(args),
        "protocol": 2,
        "_skops_version": "0.16.0",
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("schema.json", json.dumps(schema_))
    return buf.getvalue()


class _Touch:
    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def vectors(marker: Path) -> dict[str, bytes]:
    """The three vectors of the report, each creating ``marker`` if it runs."""
    code = f"open({str(marker)!r}, 'w').write('ran')"
    npy = marker.with_suffix(".npy")
    npy.write_bytes(pickle.dumps(_Touch(str(marker))))
    return {
        "runstring": reduce_file("numpy.testing._private.utils.runstring", (code, None)),
        "run_python_script": reduce_file(
            "sklearn.utils._testing.assert_run_python_script_without_output", (code,)
        ),
        "npyio_load": reduce_file("numpy.lib._npyio_impl.load", (str(npy), None, True)),
    }


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "attacker-was-here"


def test_the_vectors_would_run_if_skops_were_told_to_trust_them(marker: Path):
    """The files are real attacks: trusting skops's own untrusted list runs them."""
    data = vectors(marker)["runstring"]
    untrusted = sio.get_untrusted_types(data=data)
    assert untrusted == ["numpy.testing._private.utils.runstring"]
    sio.loads(data, trusted=untrusted)
    assert marker.exists()


@pytest.mark.parametrize("vector", ["runstring", "run_python_script", "npyio_load"])
def test_load_model_bytes_refuses_each_vector(vector: str, marker: Path):
    data = vectors(marker)[vector]
    # What skops reports as untrusted is exactly what we refuse, named in the message.
    assert refused_types(data) == sio.get_untrusted_types(data=data)
    with pytest.raises(UntrustedModelError) as info:
        load_model_bytes(data, "skops")
    name = sio.get_untrusted_types(data=data)[0]
    assert name in str(info.value) and f"trusted=[{name!r}]" in str(info.value)
    assert "Nothing was loaded" in str(info.value)
    assert not marker.exists()


def test_every_trusted_name_is_a_class_or_a_function_as_listed():
    import importlib

    for names, want_class in ((TRUSTED_CLASSES, True), (TRUSTED_FUNCTIONS, False)):
        for dotted in names:
            module, _, attr = dotted.rpartition(".")
            try:
                obj = getattr(importlib.import_module(module), attr)
            except (ImportError, AttributeError):
                continue  # a name of another scikit-learn or numpy release
            assert isinstance(obj, type) is want_class, dotted
    # never a package prefix: every entry names one object below a module
    assert all(name.count(".") >= 1 for name in TRUSTED_CLASSES | TRUSTED_FUNCTIONS)


def test_a_trusted_function_is_refused_where_it_would_be_called(marker: Path):
    """f_classif is trusted as a value (SelectKBest's default), never as a callable."""
    data = reduce_file("sklearn.feature_selection._univariate_selection.f_classif", ("x",))
    assert refused_types(data) == ["sklearn.feature_selection._univariate_selection.f_classif"]
    with pytest.raises(UntrustedModelError):
        load_model_bytes(data, "skops")


def test_fitted_scikit_learn_models_load_without_trusted():
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.feature_selection import SelectKBest
    from sklearn.impute import SimpleImputer
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    rng = np.random.RandomState(0)
    df = pd.DataFrame({"a": rng.randn(200), "b": rng.choice(list("xyz"), 200)})
    df.loc[::7, "a"] = np.nan
    y = (rng.rand(200) > 0.5).astype(int)
    models = [
        make_pipeline(
            ColumnTransformer(
                [
                    ("cat", OneHotEncoder(handle_unknown="ignore"), ["b"]),
                    ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["a"]),
                ]
            ),
            HistGradientBoostingClassifier(max_iter=5),
        ).fit(df, y),
        make_pipeline(
            ColumnTransformer([("o", OrdinalEncoder(), ["b"])], remainder="passthrough"),
            HistGradientBoostingClassifier(max_iter=5, categorical_features=[0]),
        ).fit(df, y),
        GridSearchCV(RandomForestClassifier(n_estimators=3), {"max_depth": [2, 3]}, cv=3).fit(
            df[["a"]].fillna(0), y
        ),
        SelectKBest(k=1).fit(np.c_[rng.rand(200), rng.rand(200)], y),
    ]
    for model in models:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = sio.dumps(model)
        assert type(load_model_bytes(data, "skops")) is type(model)


def test_a_user_opts_in_per_type(marker: Path):
    """trusted=[names] is the documented opt-in; it is the user's explicit decision."""
    data = vectors(marker)["runstring"]
    load_model_bytes(data, "skops", trusted=["numpy.testing._private.utils.runstring"])
    assert marker.exists()


def _plant(ref: str, data: bytes, format: str = "skops") -> None:
    """What an attacker with write access to the store does: put a crafted object and point
    the model version and its run's artifact at it."""
    store = current_store()
    digest = store.objects.put(data)
    mv = mlops.get_model_version(ref)
    with store.write() as conn:
        conn.execute(
            sa.update(schema.model_versions)
            .where(schema.model_versions.c.version_id == mv.version_id)
            .values(object_hash=digest, format=format)
        )
        conn.execute(
            sa.update(schema.artifacts)
            .where(schema.artifacts.c.run_id == mv.run_id)
            .where(schema.artifacts.c.kind == "model")
            .values(object_hash=digest, format=format)
        )


@pytest.fixture
def victim(store_dir: Path):
    x, y = training_frame()
    with mlops.track("victim") as run:
        model = LogisticRegression(max_iter=2000).fit(x, y)
    assert model.coef_.shape == (1, x.shape[1])
    mlops.register(run.run_id, "victim")
    mlops.set_alias("victim", "production", 1)
    return x


@pytest.mark.parametrize("vector", ["runstring", "run_python_script", "npyio_load"])
def test_every_load_path_refuses_a_planted_model(vector: str, victim, marker: Path, tmp_path):
    from jupyter_mlops.registry.service import get_model_version
    from jupyter_mlops.retraining.candidates import candidate_from_version
    from jupyter_mlops.serving.model import cached_model

    _plant("victim@1", vectors(marker)[vector])
    mv = get_model_version("victim@1")
    attempts = {
        "mlops.load_model": lambda: mlops.load_model("victim@production"),
        "ModelVersion.load": mv.load,
        "Run.load_model": lambda: mlops.get_run(mv.run_id).load_model(),
        "predict_batch": lambda: mlops.predict_batch("victim@1", victim, progress=False),
        "cached_model (monitors)": lambda: cached_model(mv),
        "export_model": lambda: mlops.export_model("victim@1", "docker", tmp_path / "export"),
        "retraining champion": lambda: candidate_from_version(mv, current_store()),
    }
    for where, attempt in attempts.items():
        with pytest.raises(MlopsError) as info:
            attempt()
        assert "not known to be safe" in str(info.value), where
        assert not marker.exists(), f"{where} ran the attacker's code"


def test_a_deployment_refuses_a_planted_model(victim, marker: Path):
    _plant("victim@1", vectors(marker)["runstring"])
    with pytest.raises(MlopsError) as info:
        mlops.deploy("victim@1")
    assert "not known to be safe" in str(info.value)
    assert not marker.exists()
    assert mlops.deployments().empty or (mlops.deployments().status != "running").all()


@pytest.mark.parametrize("vector", ["runstring", "run_python_script", "npyio_load"])
def test_an_exported_folder_is_untrusted_too(vector: str, marker: Path, tmp_path: Path):
    """A shared model folder is enough to attack: no database access needed."""
    from jupyter_mlops.serving.model import EXPORT_MANIFEST, load_directory

    data = vectors(marker)[vector]
    folder = tmp_path / "shared-model"
    folder.mkdir()
    (folder / "model.skops").write_bytes(data)
    manifest = {
        "name": "victim",
        "version": 1,
        "model_file": "model.skops",
        "format": "skops",
        "object_hash": hashlib.sha256(data).hexdigest(),
        "signature": {},
        "flavor": "sklearn",
    }
    (folder / EXPORT_MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(UntrustedModelError):
        load_directory(folder)
    assert not marker.exists()


def test_a_deployment_process_of_an_exported_folder_refuses_it(marker: Path, tmp_path: Path):
    """The exported server's command line (what a docker image runs) refuses it too."""
    import subprocess

    from jupyter_mlops.serving.model import EXPORT_MANIFEST

    data = vectors(marker)["runstring"]
    folder = tmp_path / "shared-model"
    folder.mkdir()
    (folder / "model.skops").write_bytes(data)
    (folder / EXPORT_MANIFEST).write_text(
        json.dumps(
            {
                "name": "victim",
                "version": 1,
                "model_file": "model.skops",
                "format": "skops",
                "object_hash": hashlib.sha256(data).hexdigest(),
            }
        )
    )
    proc = subprocess.run(
        [sys.executable, "-m", "jupyter_mlops.serving", str(folder), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "not known to be safe" in proc.stderr
    assert not marker.exists()


def test_trust_is_never_read_back_from_the_store(victim, marker: Path):
    """A database writer who marks a deployment trusted and plants a pickle gets nothing:
    a restart (what the sidebar's Restart does) loads without trust unless its caller
    gives it again."""
    from jupyter_mlops.serving.deployments import restart_deployment

    deployment = mlops.deploy("victim@1")
    try:
        _plant("victim@1", pickle.dumps(_Touch(str(marker))), format="pickle")
        store = current_store()
        options = dict(deployment.options, trusted=True)
        with store.write() as conn:
            conn.execute(
                sa.update(schema.deployments)
                .where(schema.deployments.c.deployment_id == deployment.deployment_id)
                .values(options=json.dumps(options))
            )
        with pytest.raises(MlopsError) as info:
            restart_deployment(deployment.deployment_id)
        assert "pickle" in str(info.value)
        assert not marker.exists()
    finally:
        running = mlops.deployments()
        if not running.empty:
            mlops.undeploy("victim")
    assert (mlops.deployments(all=True).status != "running").all()
