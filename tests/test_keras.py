"""Keras 3 through every stage, on the PyTorch backend (TensorFlow is never needed):
``%%track`` cells in a real IPython shell (Sequential, functional and subclassed models),
the per-epoch history as curves, the compile settings as params, the ``.keras`` archive
saved and loaded with identical predictions, a real deployment answering over HTTP,
batch scoring, models only their own code can build (recorded without the model unless
trusted), and crafted ``.keras`` files that must load nothing."""

from __future__ import annotations

import base64
import io
import json
import marshal
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is imported, here and in cells

import jupyter_mlops as mlops
from jupyter_mlops.errors import (
    MlopsError,
    UnsafeModelError,
    UntrustedModelError,
    ValidationError,
)
from jupyter_mlops.serving.launcher import stop_launcher
from jupyter_mlops.store import current_store
from jupyter_mlops.tracking.flavors import flavor_for

from .conftest import run_cell
from .serving_helpers import Client, processes_mentioning
from .test_model_safety import _plant

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")

REPO = Path(__file__).resolve().parents[1]
# Keras 3.15's torch backend converts tensors with np.array(x, copy=False), which numpy 2 warns on
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

SETUP = """
import os
os.environ.setdefault("KERAS_BACKEND", "torch")
import numpy as np
import keras
import jupyter_mlops as mlops
from tests.serving_helpers import training_frame
keras.utils.set_random_seed(0)
X, y = training_frame()
X = (X - X.mean()) / X.std()
y = y.astype("float32")
X_train, y_train = X.iloc[:400], y.iloc[:400]
X_valid, y_valid = X.iloc[400:500], y.iloc[400:500]
X_test = X.iloc[500:]
x_train, x_test = X_train.to_numpy("float32"), X_test.to_numpy("float32")
EPOCHS = 3
"""

SEQUENTIAL_CELL = """%%track keras-seq --register churn-keras
model = keras.Sequential([
    keras.Input((5,)),
    keras.layers.Dense(8, activation="relu"),
    keras.layers.Dense(1, activation="sigmoid"),
])
model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01),
              loss="binary_crossentropy", metrics=["accuracy"])
model.fit(X_train, y_train, epochs=EPOCHS, batch_size=32,
          validation_data=(X_valid, y_valid), verbose=0)
"""

FUNCTIONAL_CELL = """%%track keras-functional --register arrays
inputs = keras.Input((5,))
hidden = keras.layers.Dense(4, activation="tanh")(inputs)
outputs = keras.layers.Dense(1)(hidden)
net = keras.Model(inputs, outputs)
net.compile(optimizer="sgd", loss="mse", metrics=["mae"])
history = net.fit(x=x_train, y=y_train.to_numpy(), epochs=EPOCHS, batch_size=64,
                  validation_split=0.25, verbose=0)
"""

SUBCLASSED = """
class Net(keras.Model):
    def __init__(self, units=6, **kwargs):
        super().__init__(**kwargs)
        self.hidden = keras.layers.Dense(units, activation="relu")
        self.out = keras.layers.Dense(1, activation="sigmoid")

    def call(self, x):
        return self.out(self.hidden(x))
"""

SUBCLASSED_CELL = """%%track keras-subclassed
sub = Net()
sub.compile(optimizer="adam", loss="binary_crossentropy")
sub.fit(x_train, y_train.to_numpy(), epochs=EPOCHS, verbose=0)
"""


def track(ip, *cells: str) -> None:
    for cell in cells:
        result = run_cell(ip, cell)
        assert result.success, result.error_in_exec or result.error_before_exec


def only_run(name: str):
    frame = mlops.runs(experiment="*")
    found = frame[frame["name"] == name]
    assert len(found) == 1, frame
    return mlops.get_run(found.run_id.iloc[0])


def assert_curve(run, key: str, values: list[float]) -> None:
    history = run.metric_history(key)
    assert history["step"].tolist() == list(range(len(values)))
    assert history["value"].tolist() == pytest.approx([float(v) for v in values], rel=1e-12)


def _archive(mv) -> bytes:
    """The ``.keras`` file inside a stored model version."""
    with zipfile.ZipFile(io.BytesIO(current_store().objects.get(mv.object_hash))) as z:
        assert sorted(z.namelist()) == ["flavor.json", "model.keras"]
        return z.read("model.keras")


def test_sequential_cell_captures_history_compile_settings_and_the_model(ip, tmp_path):
    track(ip, SETUP, SEQUENTIAL_CELL)
    model, ns = ip.user_ns["model"], ip.user_ns
    run = only_run("keras-seq")
    assert run.status == "finished"
    history = model.history.history
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    for key, values in history.items():  # one point per epoch, step = epoch
        assert len(values) == 3
        assert_curve(run, key, values)
    assert run.params["model.optimizer"] == "Adam"
    assert run.params["model.optimizer.learning_rate"] == 0.01
    assert run.params["model.optimizer.beta_1"] == 0.9
    assert run.params["model.loss"] == "binary_crossentropy"
    assert run.params["model.metrics"] == "accuracy"
    assert run.params["model.epochs"] == 3 and run.params["model.batch_size"] == 32
    assert run.params["model.param_count"] == model.count_params() == 5 * 8 + 8 + 8 + 1
    assert run.params["EPOCHS"] == 3

    mv = mlops.get_model_version("churn-keras@1")
    assert mv.format == "keras"
    pinned = {r.split("==")[0].lower() for r in mv.requirements}
    assert {"keras", "torch"} <= pinned  # the backend too: an image without it cannot load it
    assert [i["name"] for i in mv.signature["inputs"]] == list(ns["X"].columns)
    assert mv.signature["input_kind"] == "dataframe"
    assert mv.signature["tensor"] == {"shape": [-1, 5], "dtype": "float32"}
    loaded = mlops.load_model("churn-keras@1")
    assert isinstance(loaded, keras.Sequential)
    x_test = ns["x_test"]
    assert np.array_equal(loaded.predict(x_test, verbose=0), model.predict(x_test, verbose=0))
    assert loaded.optimizer.get_config()["learning_rate"] == pytest.approx(0.01)
    # the archive inside is Keras' own: Keras reads it without us
    path = tmp_path / "plain.keras"
    path.write_bytes(_archive(mv))
    plain = keras.saving.load_model(path)
    assert np.array_equal(plain.predict(x_test, verbose=0), model.predict(x_test, verbose=0))


def test_functional_model_fitted_on_arrays_records_its_tensor_signature(ip):
    track(ip, SETUP, FUNCTIONAL_CELL)
    net, ns = ip.user_ns["net"], ip.user_ns
    run = only_run("keras-functional")
    for key in ("loss", "mae", "val_loss", "val_mae"):
        assert_curve(run, key, ns["history"].history[key])
    assert run.params["net.optimizer"] == "SGD"
    assert run.params["net.loss"] == "mse" and run.params["net.metrics"] == "mae"
    assert run.params["net.batch_size"] == 64 and run.params["net.validation_split"] == 0.25
    assert [m["name"] for m in run.models] == ["net"]  # not the history, not the tensors
    mv = mlops.get_model_version("arrays@1")
    assert [i["name"] for i in mv.signature["inputs"]] == [f"x{i}" for i in range(5)]
    assert {i["dtype"] for i in mv.signature["inputs"]} == {"float32"}
    assert mv.signature["input_kind"] == "ndarray"
    assert mv.signature["tensor"] == {"shape": [-1, 5], "dtype": "float32"}
    loaded = mlops.load_model("arrays@1")
    x_test = ns["x_test"]
    assert np.array_equal(loaded.predict(x_test, verbose=0), net.predict(x_test, verbose=0))


def test_a_keras_model_on_torch_is_a_torch_module_and_the_keras_flavor_takes_it(ip):
    track(ip, SETUP, SEQUENTIAL_CELL, SUBCLASSED)
    for model in (ip.user_ns["model"], ip.user_ns["Net"]()):
        assert isinstance(model, torch.nn.Module)
        mro = type(model).__mro__
        first_keras = next(i for i, c in enumerate(mro) if c.__module__.startswith("keras"))
        assert first_keras < mro.index(torch.nn.Module)
        assert flavor_for(model).name == "keras"
    layer = keras.layers.Dense(3)  # a layer is not a model of ours
    assert flavor_for(layer) is None or flavor_for(layer).name != "keras"


def test_subclassed_models_and_custom_layers_are_recorded_and_saved_only_when_trusted(ip):
    track(ip, SETUP, SUBCLASSED, SUBCLASSED_CELL)
    sub, x_test = ip.user_ns["sub"], ip.user_ns["x_test"]
    run = only_run("keras-subclassed")
    assert run.status == "finished"
    assert len(run.metric_history("loss")) == 3  # the history is there
    assert run.params["sub.optimizer"] == "Adam"
    assert run.models == []  # but not the model: only its own code can build it
    why = run.tags["mlops.model_not_saved.sub"]
    assert "__main__.Net" in why and "trusted=True" in why
    card = run._repr_html_()  # the run card says it where errors show
    assert "<div class=err>model sub not saved: This Keras model cannot be saved" in card

    # a custom layer in a Sequential model: the same
    cell = """%%track keras-custom-layer
class Double(keras.layers.Layer):
    def call(self, x):
        return x * 2.0

doubled = keras.Sequential([keras.Input((5,)), Double(), keras.layers.Dense(1)])
doubled.compile(optimizer="sgd", loss="mse")
doubled.fit(x_train, y_train.to_numpy(), epochs=1, verbose=0)
"""
    track(ip, cell)
    assert "__main__.Double" in only_run("keras-custom-layer").tags["mlops.model_not_saved.doubled"]
    # asked for by name, without trust: refused clearly
    with mlops.track("explicit") as active, pytest.raises(UnsafeModelError, match="trusted=True"):
        active.log_model(sub, "sub")
    assert only_run("explicit").models == []

    # trusted: the archive with the class pickled beside it, loaded only with trust
    trusted_cell = """%%track keras-trusted --register custom
sub.fit(x_train, y_train.to_numpy(), epochs=1, verbose=0)
mlops.log_model(sub, "sub", trusted=True)
"""
    track(ip, trusted_cell)
    trusted_run = only_run("keras-trusted")
    assert [m["name"] for m in trusted_run.models] == ["sub"]
    assert not any(k.startswith("mlops.model_not_saved") for k in trusted_run.tags)
    mv = mlops.get_model_version("custom@1")
    assert mv.format == "keras-trusted"
    assert any(r.startswith("keras==") for r in mv.requirements)  # the class is __main__.Net
    with pytest.raises(UntrustedModelError, match="trusted=True"):
        mlops.load_model("custom@1")
    loaded = mlops.load_model("custom@1", trusted=True)
    assert type(loaded).__name__ == "Net" and loaded is not sub
    assert np.array_equal(loaded.predict(x_test, verbose=0), sub.predict(x_test, verbose=0))


def test_a_loss_of_the_users_own_loads_uncompiled_and_predicts_the_same(ip):
    cell = """%%track keras-own-loss --register own-loss
def squared(y_true, y_pred):
    return keras.ops.mean((y_true - y_pred) ** 2)

plain = keras.Sequential([keras.Input((5,)), keras.layers.Dense(1)])
plain.compile(optimizer="sgd", loss=squared)
plain.fit(x_train, y_train.to_numpy(), epochs=2, verbose=0)
"""
    track(ip, SETUP, cell)
    assert only_run("keras-own-loss").params["plain.loss"] == "squared"
    assert mlops.get_model_version("own-loss@1").format == "keras"  # no custom layer: safe
    with pytest.warns(UserWarning, match="without its compile settings"):
        loaded = mlops.load_model("own-loss@1")
    x_test = ip.user_ns["x_test"]
    assert np.array_equal(
        loaded.predict(x_test, verbose=0), ip.user_ns["plain"].predict(x_test, verbose=0)
    )

    # a custom layer Keras cannot serialize at all: refused clearly, even trusted
    cell = """%%track keras-unserializable
class Apply(keras.layers.Layer):
    def __init__(self, fn, **kwargs):
        super().__init__(**kwargs)
        self.fn = fn

    def call(self, x):
        return self.fn(x)

odd = keras.Sequential([keras.Input((5,)), Apply(lambda t: t * 2), keras.layers.Dense(1)])
odd.compile(optimizer="sgd", loss="mse")
odd.fit(x_train, y_train.to_numpy(), epochs=1, verbose=0)
"""
    track(ip, cell)
    assert "__main__.Apply" in only_run("keras-unserializable").tags["mlops.model_not_saved.odd"]
    with mlops.track("odd-trusted") as active, pytest.raises(ValidationError, match="get_config"):
        active.log_model(ip.user_ns["odd"], "odd", trusted=True)
    assert only_run("odd-trusted").models == []


@pytest.fixture
def served(ip, store_dir):
    track(ip, SETUP, SEQUENTIAL_CELL)
    yield ip
    for d in mlops.deployments().itertuples():  # never leave a server behind
        mlops.undeploy(d.deployment_id)
    stop_launcher(store_dir)
    assert processes_mentioning(str(store_dir)) == []


@pytest.mark.slow
def test_a_deployed_keras_model_answers_oip_and_invocations_like_the_notebook(served):
    ns = served.user_ns
    model, rows = ns["model"], ns["X_test"].iloc[:20]
    expected = model.predict(rows.to_numpy("float32"), verbose=0)[:, 0]
    d = mlops.deploy("churn-keras@1")
    assert d.status == "running", d
    client = Client(int(d.url.rsplit(":", 1)[1]))
    status, _, meta = client.get("/v2/models/churn-keras")
    assert status == 200 and [i["name"] for i in meta["inputs"]] == list(rows.columns)
    body = {
        "inputs": [
            {"name": c, "shape": [len(rows)], "datatype": "FP64", "data": rows[c].tolist()}
            for c in rows.columns
        ]
    }
    status, _, out = client.post("/v2/models/churn-keras/infer", body)
    assert status == 200, out
    assert np.allclose(out["outputs"][0]["data"], expected, rtol=1e-6, atol=0)
    records = json.loads(rows.to_json(orient="records"))
    status, _, out = client.post("/invocations", {"dataframe_records": records})
    assert status == 200, out
    assert np.allclose(out["predictions"], expected, rtol=1e-6, atol=0)
    # a missing value is refused: a NaN input is a NaN output
    holed = [{**records[0], "radius": None}]
    status, _, out = client.post("/invocations", {"dataframe_records": holed})
    assert status in (400, 422) and "radius" in json.dumps(out)
    client.close()
    # the serving process ran Keras on the backend it was given
    env = Path(f"/proc/{d.pid}/environ").read_bytes().split(b"\0") if d.pid else []
    assert b"KERAS_BACKEND=torch" in env


def test_predict_batch_check_and_export_score_with_the_keras_model(ip, tmp_path):
    track(ip, SETUP, SEQUENTIAL_CELL)
    model, x_test = ip.user_ns["model"], ip.user_ns["X_test"]
    scored = mlops.predict_batch("churn-keras@1", x_test)
    expected = model.predict(x_test.to_numpy("float32"), verbose=0)[:, 0]
    assert np.allclose(scored["prediction"].to_numpy(), expected, rtol=1e-6, atol=0)
    assert len(scored) == len(x_test)
    # a monitor check scores rows with it too
    mlops.set_monitor("churn-keras@1", min_rows=20)
    outcome = mlops.check("churn-keras@1", current=x_test)
    assert outcome.rows == len(x_test) and outcome.report.prediction is not None
    # and a docker export's folder serves it as the store does
    from jupyter_mlops.serving.model import load_directory

    folder = mlops.export_model("churn-keras@1", "docker", tmp_path / "image")
    assert (folder / "model" / "model.keras.zip").is_file()
    served = load_directory(folder / "model")
    columns = {c: x_test[c].tolist() for c in x_test.columns}
    out = served.predict(served.schema.frame(columns), ("predict",))
    assert np.allclose(out["predict"], expected, rtol=1e-6, atol=0)


def test_a_process_without_keras_backend_loads_the_model_on_an_installed_one(ip, store_dir):
    """KERAS_BACKEND unset and no keras.json: TensorFlow is not installed, so the loader
    gives Keras the backend the model was saved with (torch), and predicts the same; a
    backend that is not installed, or Keras missing, is a clear error."""
    track(ip, SETUP, SEQUENTIAL_CELL)
    np.save(store_dir.parent / "x.npy", ip.user_ns["x_test"])
    expected = ip.user_ns["model"].predict(ip.user_ns["x_test"], verbose=0)
    code = """
import sys, numpy as np, jupyter_mlops as mlops
assert "keras" not in sys.modules
model = mlops.load_model("churn-keras@1")
import keras
print(keras.backend.backend())
np.save(sys.argv[1], model.predict(np.load(sys.argv[2]), verbose=0))
"""
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env.update(
        MLOPS_HOME=str(store_dir),
        PYTHONPATH=str(REPO),
        KERAS_HOME=str(store_dir.parent / "keras-home"),
    )
    out_path, x_path = store_dir.parent / "out.npy", store_dir.parent / "x.npy"
    out = subprocess.run(
        [sys.executable, "-c", code, str(out_path), str(x_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "torch"
    assert np.array_equal(np.load(out_path), expected)

    # a backend that is not there, and Keras not installed: each says what to do
    code = """
import sys
if sys.argv[1] == "missing":
    sys.modules["keras"] = None  # as if it were not installed
import jupyter_mlops as mlops
try:
    mlops.load_model("churn-keras@1")
except mlops.MlopsError as exc:
    print("ERROR:", exc)
"""
    for case, backend, said in (
        ("backend", "nonesuch", "set KERAS_BACKEND to an installed backend"),
        ("missing", "torch", "keras is not installed here: pip install 'jupyter_mlops[keras]'"),
    ):
        out = subprocess.run(
            [sys.executable, "-c", code, case],
            env={**env, "KERAS_BACKEND": backend},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr[-3000:]
        assert said in out.stdout
    assert mlops.get_model_version("churn-keras@1").format == "keras"  # nothing changed


# -- .keras files are untrusted input -------------------------------------------------------


def _lambda_code(marker: Path) -> str:
    """Keras' own encoding of a lambda: marshalled bytecode, base64 (what a Lambda layer's
    config holds); this one creates ``marker`` when it runs."""
    fn = eval(f"lambda x: __import__('pathlib').Path({str(marker)!r}).touch() or x")
    return base64.b64encode(marshal.dumps(fn.__code__)).decode()


def _keras_file(config: dict, weights: bytes, extra: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("metadata.json", json.dumps({"keras_version": keras.__version__}))
        z.writestr("config.json", json.dumps(config))
        z.writestr("model.weights.h5", weights)
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return buf.getvalue()


def _flavor_file(keras_bytes: bytes, info: dict, format: str = "keras") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("flavor.json", json.dumps({"format": format, **info}))
        z.writestr("model.keras", keras_bytes)
    return buf.getvalue()


def _with_layer(config: dict, layer: dict) -> dict:
    crafted = json.loads(json.dumps(config))
    crafted["config"]["layers"].insert(1, layer)
    return crafted


def test_crafted_keras_files_are_refused_and_run_nothing(ip, tmp_path):
    track(ip, SETUP, SEQUENTIAL_CELL)
    mv = mlops.get_model_version("churn-keras@1")
    stored = current_store().objects.get(mv.object_hash)
    with zipfile.ZipFile(io.BytesIO(stored)) as z:
        info = json.loads(z.read("flavor.json"))
    with zipfile.ZipFile(io.BytesIO(_archive(mv))) as z:
        config, weights = json.loads(z.read("config.json")), z.read("model.weights.h5")
    marker = tmp_path / "pwned"
    dtype = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}}
    lambda_layer = {
        "module": "keras.layers",
        "class_name": "Lambda",
        "config": {
            "name": "lambda",
            "dtype": dtype,
            "function": {
                "class_name": "__lambda__",
                "config": {"code": _lambda_code(marker), "defaults": None, "closure": None},
            },
            "arguments": {},
        },
        "registered_name": None,
    }
    lambda_file = _keras_file(_with_layer(config, lambda_layer), weights)

    # the payload is live: Keras' unsafe load runs it (in a separate process)
    probe = tmp_path / "probe.keras"
    probe.write_bytes(lambda_file)
    code = (
        "import os, sys; os.environ['KERAS_BACKEND'] = 'torch'; import keras\n"
        "keras.saving.load_model(sys.argv[1], safe_mode=False)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(probe)], capture_output=True, timeout=300)
    assert marker.exists(), "the crafted Lambda layer did not run under safe_mode=False"
    marker.unlink()

    def layer(module, class_name, inner=None, registered=None) -> dict:
        return {
            "module": module,
            "class_name": class_name,
            "config": inner if inner is not None else {"name": "x"},
            "registered_name": registered,
        }

    def dense(activation) -> dict:
        found = json.loads(json.dumps(config["config"]["layers"][1]))
        found["config"]["activation"] = activation
        return found

    dense_eval = dense(layer("builtins", "function", "eval", "function"))
    dense_lambda = dense(lambda_layer["config"]["function"])
    h5 = io.BytesIO()
    import h5py

    with h5py.File(h5, "w") as f:
        f["vars"] = h5py.ExternalLink("/etc/passwd", "/")
    cases = [
        (lambda_file, "a Lambda layer"),
        (_keras_file(_with_layer(config, dense_lambda), weights), "a Python lambda"),
        (_keras_file(_with_layer(config, layer("os", "system")), weights), "'os.system'"),
        (_keras_file(_with_layer(config, layer("builtins", "eval")), weights), "builtins.eval"),
        (_keras_file(_with_layer(config, dense_eval), weights), "builtins.eval"),
        (
            _keras_file(_with_layer(config, layer("keras.utils", "function", "get_file")), weights),
            "keras.utils.get_file",
        ),
        (
            _keras_file(_with_layer(config, layer("keras.layers", "TorchModuleWrapper")), weights),
            "torch.nn.Module",
        ),
        (
            _keras_file(
                _with_layer(config, layer("keras.layers", "Dense", None, "my>Evil")), weights
            ),
            "registered custom object",
        ),
        (_keras_file(config, weights, {"../../evil.py": b"x"}), "../../evil.py"),
        (_keras_file(config, h5.getvalue()), "ExternalLink"),
        (_keras_file(config, b"not hdf5"), "not HDF5"),
        (b"PK\x03\x04 not a zip", "not a zip archive"),
    ]
    for data, message in cases:
        _plant("churn-keras@1", _flavor_file(data, info), "keras")
        with pytest.raises(MlopsError, match=message.replace(".", r"\.").replace("(", r"\(")):
            mlops.load_model("churn-keras@1")
        with pytest.raises(MlopsError):
            mlops.predict_batch("churn-keras@1", ip.user_ns["X_test"], log=False)
        assert not marker.exists()
    # a trusted-format file is refused without trust, before anything in it is read
    _plant("churn-keras@1", _flavor_file(lambda_file, info, "keras-trusted"), "keras-trusted")
    with pytest.raises(UntrustedModelError):
        mlops.load_model("churn-keras@1")
    assert not marker.exists()
    # the true file back: the version loads and predicts as before
    _plant("churn-keras@1", stored, "keras")
    assert mlops.get_model_version("churn-keras@1").signature == mv.signature
    x_test = ip.user_ns["x_test"]
    assert np.array_equal(
        mlops.load_model("churn-keras@1").predict(x_test, verbose=0),
        ip.user_ns["model"].predict(x_test, verbose=0),
    )
