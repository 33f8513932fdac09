"""Export a registered model for when one machine is not enough.

``jupyter-mlops export churn@production --format mlflow|onnx|docker|kserve OUTDIR`` writes
one of:

- ``mlflow``: an MLflow model directory (``MLmodel``, the model file, environment files)
  that ``mlflow.pyfunc.load_model`` loads and that MLflow's own serving tools (and KServe's
  MLflow runtime) serve. A model whose flavor has an MLflow flavor is written as MLflow
  itself saves it (XGBoost: ``model.ubj``; LightGBM: a Booster's ``model.lgb`` model
  text, a scikit-learn wrapper as skops); any other scikit-learn-compatible estimator as
  MLflow's sklearn flavor (``model.pkl``).
- ``onnx``: ``model.onnx`` (scikit-learn, XGBoost and LightGBM models), verified in
  onnxruntime against the original's predictions before it is written (see
  ``onnx_export``).
- ``docker``: a build context for an image that serves the model with jupyter_mlops's own
  server (Open Inference Protocol v2 and ``/invocations``): a ``Dockerfile``, a pinned
  ``requirements.txt``, the model folder (``model/`` with ``mlops-model.json``) and a
  vendored copy of the ``jupyter_mlops`` package, so the build needs no package index for
  our own code.
- ``kserve``: the docker context plus ``inferenceservice.yaml``, a KServe InferenceService
  that runs that image with probes, resources and its token from a Secret.

An export is written to a temporary folder beside OUTDIR and moved in place at the end, so
an interrupted export leaves nothing half-written. OUTDIR may be new, empty, or a previous
export (recognised by its ``.mlops-export.json``); a folder holding anything else is
refused, never overwritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import platform
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .._version import __version__
from ..errors import MlopsError, UntrustedModelError, ValidationError
from .model import EXPORT_MANIFEST, load_failure

__all__ = [
    "EXPORT_MARKER",
    "FORMATS",
    "SERVING_PACKAGES",
    "describe_export",
    "export_model",
    "k8s_name",
    "mlflow_signature",
]

FORMATS = ("mlflow", "onnx", "docker", "kserve")
EXPORT_MARKER = ".mlops-export.json"
SERVING_PORT = 8080

# What the serving process imports, pinned in the image at the versions installed here.
SERVING_PACKAGES = (
    "starlette",
    "uvicorn",
    "httptools",
    "uvloop",
    "prometheus-client",
    "SQLAlchemy",
    "pandas",
    "numpy",
    "pyarrow",
    "fsspec",
    "skops",
    "scikit-learn",
)

# Folders never copied into the vendored package: caches and the built labextension.
_VENDOR_SKIP = ("__pycache__", "*.pyc", "*.pyo", "labextension", "static", "node_modules")
_VENDOR_SKIP += (".ipynb_checkpoints",)


# -- entry point ----------------------------------------------------------------------------
def export_model(
    reference: str,
    format: str,
    outdir: str | Path,
    *,
    trusted: bool = False,
    image: str | None = None,
    store: Any = None,
) -> Path:
    """Export the model version ``reference`` names (``churn@production``) to ``outdir``.

    ``format`` is ``"mlflow"``, ``"onnx"``, ``"docker"`` or ``"kserve"`` (see the module
    docstring).
    The model is loaded with the store's safety rules: a skops file whose types are not
    known to be safe, or a pickle, needs ``trusted=True`` (and a docker image built from
    such an export starts its server with ``--trusted``). ``image`` is the image the KServe
    manifest runs (default ``<name>:<version>``). Returns the export folder.
    """
    from ..registry.service import get_model_version
    from ..store import current_store

    fmt = _check_format(format)
    target = Path(outdir).expanduser().absolute()
    previous = _check_outdir(target)
    store = store or current_store()
    mv = get_model_version(reference, store)
    data = store.objects.get(mv.object_hash)
    model, needs_trust = _load(mv, data, trusted)

    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.export-", dir=target.parent))
    work.chmod(0o755)  # mkdtemp makes it private; the export is an ordinary folder
    try:
        tag = image or default_image(mv)
        checked = None
        if fmt == "mlflow":
            _write_mlflow(work, mv, model)
        elif fmt == "onnx":
            from .onnx_export import write_onnx

            checked = write_onnx(work, mv, model, store).to_dict()
        else:
            _write_docker(
                work, mv, data, needs_trust=needs_trust, image=tag, kserve=fmt == "kserve"
            )
            if fmt == "kserve":
                _write_kserve(work, mv, tag, model_bytes=len(data))
        entries = sorted(p.name for p in work.iterdir())
        marker = {
            "format": fmt,
            "reference": reference,
            "model": mv.name,
            "version": mv.version,
            "run_id": mv.run_id,
            "object_hash": mv.object_hash,
            "image": tag if fmt in ("docker", "kserve") else None,
            "trusted": needs_trust,
            "exported": time.time(),
            "jupyter_mlops": __version__,
            "entries": entries,
        }
        if checked is not None:
            marker["onnx"] = checked
        (work / EXPORT_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        _commit(work, target, previous)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return target


def describe_export(outdir: str | Path) -> list[str]:
    """What an export folder holds and what to do next, as lines for a terminal."""
    folder = Path(outdir)
    marker = json.loads((folder / EXPORT_MARKER).read_text())
    fmt, ref = marker["format"], f"{marker['model']}@{marker['version']}"
    lines = [f"exported {ref} ({marker['reference']}) as {fmt} to {folder}"]
    for entry in marker["entries"]:
        lines.append(f"  {entry}/" if (folder / entry).is_dir() else f"  {entry}")
    if fmt == "mlflow":
        lines.append(f"load it with: mlflow.pyfunc.load_model({str(folder)!r})")
        lines.append(f"serve it with: mlflow models serve -m {folder}")
    elif fmt == "onnx":
        lines += _describe_onnx(folder, marker.get("onnx") or {})
    else:
        lines.append(f"build the image: docker build -t {marker['image']} {folder}")
        if fmt == "kserve":
            secret = f"{k8s_name(marker['model'])}-serving-token"
            lines.append(
                f"then: kubectl create secret generic {secret} "
                '--from-literal=token="$(openssl rand -hex 24)"'
            )
            lines.append(f"      kubectl apply -f {folder / 'inferenceservice.yaml'}")
    return lines


def _describe_onnx(folder: Path, check: dict[str, Any]) -> list[str]:
    lines = []
    if check:
        agreed = f"max difference {check['max_abs_diff']:.3g} (tolerance {check['tolerance']:.3g})"
        if check.get("labels_equal") is not None:
            agreed += f", {check['labels_equal']}/{check['rows']} labels equal"
        lines.append(f"verified in onnxruntime on {check['source']}: {agreed}")
        inputs = check.get("inputs") or []
        names = ", ".join(i["name"] for i in inputs[:20]) + (", ..." if len(inputs) > 20 else "")
        if check.get("layout") == "tensor":
            lines.append(f"input: 'input', float32 [N, {len(inputs)}], columns {names}")
        else:
            shown = ", ".join(f"{i['name']} ({i['type']})" for i in inputs[:20])
            lines.append(f"inputs: one [N, 1] tensor per column: {shown}")
        lines.append(f"outputs: {', '.join(check.get('outputs') or [])}")
    lines.append(
        f"run it with: onnxruntime.InferenceSession({str(folder / 'model.onnx')!r}).run(None, feed)"
    )
    return lines


# -- checks and loading ---------------------------------------------------------------------
def _check_format(format: str) -> str:
    fmt = str(format).strip().lower()
    if fmt not in FORMATS:
        raise ValidationError(
            f"Unknown export format {format!r}; choose one of {', '.join(FORMATS)} "
            "(mlflow: an MLflow model folder; onnx: an ONNX file checked in onnxruntime; "
            "docker: an image build context; kserve: the docker context plus a KServe "
            "InferenceService)."
        )
    return fmt


def _check_outdir(target: Path) -> dict[str, Any] | None:
    """The previous export's marker when ``target`` holds one; None when it is new or empty.

    Anything else (a file, a folder with other content) is refused so nothing is lost.
    """
    if not target.exists():
        return None
    if not target.is_dir():
        raise ValidationError(
            f"{target} is a file, not a folder; give a new or empty folder to export into."
        )
    content = sorted(p.name for p in target.iterdir())
    if not content:
        return None
    marker_path = target / EXPORT_MARKER
    if marker_path.is_file():
        try:
            marker = json.loads(marker_path.read_text())
            if isinstance(marker, dict) and isinstance(marker.get("entries"), list):
                return marker
        except (OSError, ValueError):
            pass
    shown = ", ".join(content[:5]) + (", ..." if len(content) > 5 else "")
    raise ValidationError(
        f"{target} is not empty ({shown}) and is not a previous export, so exporting there "
        "could overwrite your files. Give a new or empty folder, or remove its content first."
    )


def _load(mv: Any, data: bytes, trusted: bool) -> tuple[Any, bool]:
    """The model from its stored bytes, and whether loading it needed ``trusted=True``
    (a pickle, or a skops file with types not known to be safe)."""
    from ..tracking.flavors import flavor_for_format
    from ..tracking.modelio import load_model_bytes

    if mv.format != "pickle" and flavor_for_format(mv.format) is None:
        raise MlopsError(f"Unknown model format {mv.format!r}; upgrade jupyter_mlops to read it.")
    needs_trust = False
    try:
        try:
            model = load_model_bytes(data, mv.format, trusted=False)
        except UntrustedModelError as exc:
            if not trusted:
                raise ValidationError(
                    f"{exc} To export model {mv.ref} anyway, pass trusted=True (--trusted on "
                    "the command line); an exported server then loads it as trusted too."
                ) from exc
            needs_trust = True
            model = load_model_bytes(data, mv.format, trusted=True)
    except MlopsError:
        raise
    except Exception as exc:
        raise load_failure(mv, exc) from exc
    if not callable(getattr(model, "predict", None)):
        raise ValidationError(
            f"Model {mv.ref} ({type(model).__name__}) has no predict method, so it cannot be "
            "served; register an estimator that predicts."
        )
    return model, needs_trust


# -- names ---------------------------------------------------------------------------------
def k8s_name(name: str) -> str:
    """A Kubernetes resource name (DNS-1035 label) for a model name: ``Churn_v2`` → ``churn-v2``."""
    text = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    text = re.sub(r"-{2,}", "-", text)
    if not text or not text[0].isalpha():
        text = f"m-{text}".rstrip("-")
    return text[:40].rstrip("-")


def default_image(mv: Any) -> str:
    """The image tag an export builds by default: ``<name>:<version>``."""
    return f"{k8s_name(mv.name)}:{mv.version}"


def _dist_key(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else requirement.lower()


def _installed(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _merge_requirements(first: Iterable[str], then: Iterable[str]) -> list[str]:
    """Requirements of ``first`` and those of ``then`` naming other distributions."""
    out: dict[str, str] = {}
    for line in [*first, *then]:
        line = line.strip()
        if line and not line.startswith("#"):
            out.setdefault(_dist_key(line), line)
    return sorted(out.values(), key=_dist_key)


# -- mlflow ---------------------------------------------------------------------------------
_MLFLOW_TYPES = {
    "float64": "double",
    "double": "double",
    "float32": "float",
    "float16": "float",
    "int64": "long",
    "uint64": "long",
    "uint32": "long",
    "int32": "integer",
    "int16": "integer",
    "int8": "integer",
    "uint16": "integer",
    "uint8": "integer",
    "bool": "boolean",
    "boolean": "boolean",
    "object": "string",
    "str": "string",
    "string": "string",
    "category": "string",
}


def _mlflow_type(dtype: str) -> str | None:
    text = str(dtype).strip()
    lowered = text.lower()
    if lowered in _MLFLOW_TYPES:
        return _MLFLOW_TYPES[lowered]
    if lowered.startswith("string"):
        return "string"
    if lowered.startswith("datetime64"):
        return "datetime"
    return None


def mlflow_signature(signature: dict[str, Any]) -> dict[str, Any] | None:
    """Our signature in MLflow's ``MLmodel`` format, or None when it cannot be expressed
    (no inputs, a column whose type is unknown, or a column the model takes as a pandas
    Categorical: MLflow's schema has no categorical type and refuses one): MLflow then
    checks no schema."""
    inputs = signature.get("inputs") or []
    if not inputs or any(i.get("pandas_category") for i in inputs):
        return None
    if signature.get("input_kind") == "ndarray":
        dtypes = {str(i.get("dtype")) for i in inputs}
        if len(dtypes) != 1 or _mlflow_type(next(iter(dtypes))) is None:
            return None
        spec: list[dict[str, Any]] = [
            {
                "type": "tensor",
                "tensor-spec": {"dtype": next(iter(dtypes)), "shape": [-1, len(inputs)]},
            }
        ]
    else:
        spec = []
        for column in inputs:
            kind = _mlflow_type(str(column.get("dtype", "unknown")))
            if kind is None:
                return None
            spec.append({"type": kind, "name": str(column["name"]), "required": True})
    out_spec = None
    output = (signature.get("outputs") or [{}])[0]
    out_dtype = str(output.get("dtype") or "")
    if _mlflow_type(out_dtype) in ("double", "float", "long", "integer", "boolean"):
        out_spec = json.dumps(
            [{"type": "tensor", "tensor-spec": {"dtype": out_dtype, "shape": [-1]}}]
        )
    elif _mlflow_type(out_dtype) == "string":
        out_spec = json.dumps([{"type": "string", "required": True}])
    return {"inputs": json.dumps(spec), "outputs": out_spec, "params": None}


def _is_sklearn_compatible(model: Any) -> bool:
    try:
        from sklearn.base import BaseEstimator

        if isinstance(model, BaseEstimator):
            return True
    except ImportError:  # pragma: no cover - scikit-learn is a dependency
        pass
    return all(callable(getattr(model, m, None)) for m in ("fit", "predict", "get_params"))


def _sklearn_mlflow(folder: Path, mv: Any, model: Any) -> Any:
    """MLflow's sklearn flavor: ``model.pkl``, a plain pickle (what MLflow itself reads)."""
    from ..tracking.flavors.base import MlflowFlavor

    if not _is_sklearn_compatible(model):
        raise ValidationError(
            f"Model {mv.ref} is a {type(model).__module__}.{type(model).__qualname__}, which is "
            "not a scikit-learn-compatible estimator: the mlflow format only supports those "
            "(MLflow's sklearn flavor) and the frameworks MLflow has a flavor for (XGBoost, "
            "LightGBM). Export it with --format docker or --format kserve, which serve any "
            "model jupyter_mlops can load."
        )
    try:
        payload = pickle.dumps(model, protocol=pickle.DEFAULT_PROTOCOL)
    except Exception as exc:
        raise ValidationError(
            f"Model {mv.ref} cannot be pickled for MLflow ({type(exc).__name__}: {exc}); "
            "export it with --format docker instead."
        ) from exc
    (folder / "model.pkl").write_bytes(payload)
    pins = {_dist_key(r): r for r in mv.requirements}
    sklearn_version = (pins.get("scikit-learn") or "").partition("==")[2] or _installed(
        "scikit-learn"
    )
    flavors = {
        "python_function": {
            "loader_module": "mlflow.sklearn",
            "model_path": "model.pkl",
            "predict_fn": "predict",
        },
        "sklearn": {
            "code": None,
            "pickled_model": "model.pkl",
            "serialization_format": "pickle",
            "sklearn_version": sklearn_version,
        },
    }
    # model.pkl is a plain pickle: skops (how the store saved it) is not needed to load it.
    return MlflowFlavor(flavors, "model.pkl", drop_requirements=["skops"])


def _write_mlflow(folder: Path, mv: Any, model: Any) -> None:
    """An MLflow model folder: the model as its flavor's MLflow flavor writes it (or as
    MLflow's sklearn flavor), ``MLmodel`` with the signature, and environment files."""
    import yaml

    from ..tracking.flavors import flavor_for

    flavor = flavor_for(model)
    written = flavor.export_mlflow(model, folder) if flavor is not None else None
    if written is None:
        written = _sklearn_mlflow(folder, mv, model)
    drop = {_dist_key(r) for r in written.drop_requirements}
    requirements = [r for r in mv.requirements if _dist_key(r) not in drop]
    pins = {_dist_key(r) for r in requirements}
    if "pandas" not in pins and _installed("pandas"):
        requirements.append(f"pandas=={_installed('pandas')}")
    if flavor is not None and flavor.name != "sklearn":
        # the framework itself, pinned at the version that wrote the model file
        dist = _framework_dist(flavor.package)
        if dist and dist not in pins and _installed(dist):
            requirements.append(f"{dist}=={_installed(dist)}")
    requirements = _merge_requirements(requirements, written.extra_requirements)
    python_version = platform.python_version()

    flavors = written.flavors
    flavors["python_function"] = {
        **flavors["python_function"],
        "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
        "python_version": python_version,
    }
    mlmodel: dict[str, Any] = {
        "artifact_path": None,
        "flavors": flavors,
        "metadata": {
            "source": "jupyter_mlops",
            "jupyter_mlops_version": __version__,
            "model": mv.name,
            "version": mv.version,
            "run_id": mv.run_id,
        },
        "model_size_bytes": (folder / written.model_file).stat().st_size,
        "model_uuid": uuid.uuid4().hex,
        "utc_time_created": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
    }
    signature = mlflow_signature(mv.signature or {})
    if signature is not None:
        mlmodel["signature"] = signature
    (folder / "MLmodel").write_text(yaml.safe_dump(mlmodel, sort_keys=False))
    (folder / "requirements.txt").write_text("\n".join(requirements) + "\n")
    conda = {
        "name": "mlflow-env",
        "channels": ["conda-forge"],
        "dependencies": [f"python={python_version}", "pip", {"pip": requirements}],
    }
    (folder / "conda.yaml").write_text(yaml.safe_dump(conda, sort_keys=False))
    python_env = {
        "python": python_version,
        "build_dependencies": ["pip", "setuptools", "wheel"],
        "dependencies": ["-r requirements.txt"],
    }
    (folder / "python_env.yaml").write_text(yaml.safe_dump(python_env, sort_keys=False))


def _framework_dist(package: str) -> str | None:
    """The installed distribution that provides the top-level module ``package``
    (``xgboost`` comes from ``xgboost`` or ``xgboost-cpu``)."""
    from importlib.metadata import packages_distributions

    found = packages_distributions().get(package) or []
    return _dist_key(found[0]) if found else None


# -- docker ---------------------------------------------------------------------------------
def _write_model_folder(folder: Path, mv: Any, data: bytes) -> None:
    """``model/``: the model file as stored and the manifest ``load_directory`` reads."""
    folder.mkdir()
    # skops and pickle files by their usual names; a flavor's archive (XGBoost, LightGBM)
    # as model.<format>.zip
    model_file = {"skops": "model.skops", "pickle": "model.pkl"}.get(
        mv.format, f"model.{mv.format}.zip"
    )
    (folder / model_file).write_bytes(data)
    manifest = {
        "name": mv.name,
        "version": mv.version,
        "model_file": model_file,
        "object_hash": hashlib.sha256(data).hexdigest(),
        "format": mv.format,
        "flavor": mv.flavor,
        "signature": _exported_signature(mv),
        "requirements": mv.requirements,
        "run_id": mv.run_id,
        "exported_by": f"jupyter_mlops {__version__}",
    }
    (folder / EXPORT_MANIFEST).write_text(json.dumps(manifest, indent=2, default=str) + "\n")


def _exported_signature(mv: Any) -> dict[str, Any]:
    """The signature, with the columns the training data had missing values in (read from
    the store for versions registered before signatures recorded them): the exported
    server takes missing values there without the store."""
    from .model import _trained_with

    signature = dict(mv.signature or {})
    if "trained_with_missing" not in signature:
        signature["trained_with_missing"] = sorted(_trained_with(mv))
    return signature


def _serving_requirements(mv: Any) -> list[str]:
    """The model version's pins, then the serving stack at the versions installed here."""
    stack = [f"{d}=={v}" for d in SERVING_PACKAGES if (v := _installed(d)) is not None]
    return _merge_requirements(mv.requirements, stack)


def _vendor_package(dest: Path) -> None:
    """Copy the ``jupyter_mlops`` source (no caches, no built labextension) to ``dest``."""
    source = Path(__file__).resolve().parents[1]
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns(*_VENDOR_SKIP))


def _dockerfile(mv: Any, *, needs_trust: bool) -> str:
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    cmd = ["python", "-m", "jupyter_mlops.serving", "/app/model"]
    if needs_trust:
        cmd.append("--trusted")
    health = (
        "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + "
        "os.environ.get('MLOPS_SERVE_PORT', '8080') + '/v2/health/ready', timeout=4)"
    )
    return f"""\
# {mv.ref} served by jupyter_mlops {__version__} (Open Inference Protocol v2, /invocations).
# Build: docker build -t {default_image(mv)} .
FROM python:{python}-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY requirements.txt /app/requirements.txt
RUN pip install --no-cache-dir -r requirements.txt

# jupyter_mlops itself is vendored: no package index is needed for our own code.
COPY jupyter_mlops/ /app/jupyter_mlops/
COPY model/ /app/model/
RUN useradd --create-home --uid 10001 mlops && mkdir -p /app/.mlops && chown mlops /app/.mlops
USER 10001

# A non-loopback host needs a bearer token: pass MLOPS_SERVE_TOKEN (from a secret).
ENV PYTHONPATH=/app MLOPS_SERVE_HOST=0.0.0.0 MLOPS_SERVE_PORT={SERVING_PORT} MLOPS_HOME=/app/.mlops
EXPOSE {SERVING_PORT}
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \\
  CMD python -c "{health}" || exit 1
CMD {json.dumps(cmd)}
"""


_DOCKERIGNORE = """\
.mlops-export.json
README.md
inferenceservice.yaml
**/__pycache__
**/*.pyc
.mlops
.git
"""


def _readme(mv: Any, image: str, *, kserve: bool) -> str:
    name = k8s_name(mv.name)
    text = f"""\
# {mv.ref}: serving image build context

Exported by jupyter_mlops {__version__} from run `{mv.run_id}`. The image serves the model
with jupyter_mlops's server: Open Inference Protocol v2
(`POST /v2/models/{mv.name}/infer`), MLflow-style `POST /invocations`, health checks on
`/v2/health/live` and `/v2/health/ready`, Prometheus `/metrics`.

## Build and run

```sh
docker build -t {image} .
docker run --rm -p {SERVING_PORT}:{SERVING_PORT} -e MLOPS_SERVE_TOKEN="$(openssl rand -hex 24)" {image}
```

The server listens on `0.0.0.0:{SERVING_PORT}` (`MLOPS_SERVE_HOST`, `MLOPS_SERVE_PORT`).
A non-loopback address is never served without authentication: give the bearer token in
`MLOPS_SERVE_TOKEN`, from a secret (a Kubernetes Secret, your platform's secret store),
never baked into the image. Without it the entrypoint will not serve unauthenticated; it
makes up a token and prints it once in the log. Clients send
`Authorization: Bearer <token>`; the health checks need none.

```sh
curl -s -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
  -d '{{"dataframe_records": [{{...}}]}}' http://localhost:{SERVING_PORT}/invocations
```

The inference log is written to `MLOPS_HOME` (`/app/.mlops`, inside the container). To
monitor the served model from your notebooks, point the container at the team store with
`MLOPS_DB_URL` and `MLOPS_ARTIFACTS_URL` (add their drivers, such as `psycopg` or `s3fs`,
to `requirements.txt`).

## What is here

- `Dockerfile`: `python:{sys.version_info.major}.{sys.version_info.minor}-slim`, pinned
  `requirements.txt` (the model's own pins first, then the serving stack).
- `model/`: the model file, hash-checked at start against `model/{EXPORT_MANIFEST}`.
- `jupyter_mlops/`: the package source the server runs.
"""
    if kserve:
        text += f"""
## KServe

```sh
docker build -t {image} . && docker push {image}
kubectl create secret generic {name}-serving-token --from-literal=token="$(openssl rand -hex 24)"
kubectl apply -f inferenceservice.yaml
```

`inferenceservice.yaml` runs the image as a custom predictor speaking the Open Inference
Protocol (`PROTOCOL=v2`), with probes on the health routes, resource requests and limits,
and `MLOPS_SERVE_TOKEN` from the Secret `{name}-serving-token` (key `token`). Edit the
image, resources and namespace to fit your cluster.
"""
    return text


def _write_docker(
    folder: Path, mv: Any, data: bytes, *, needs_trust: bool, image: str, kserve: bool
) -> None:
    _write_model_folder(folder / "model", mv, data)
    _vendor_package(folder / "jupyter_mlops")
    (folder / "requirements.txt").write_text("\n".join(_serving_requirements(mv)) + "\n")
    (folder / "Dockerfile").write_text(_dockerfile(mv, needs_trust=needs_trust))
    (folder / ".dockerignore").write_text(_DOCKERIGNORE)
    (folder / "README.md").write_text(_readme(mv, image, kserve=kserve))


# -- kserve ---------------------------------------------------------------------------------
def _memory(nbytes: int) -> str:
    mib = 1024 * 1024
    return f"{max(512, -(-(256 * mib + 4 * nbytes) // mib))}Mi"


def _write_kserve(folder: Path, mv: Any, image: str, *, model_bytes: int) -> None:
    import yaml

    name = k8s_name(mv.name)
    request_mem = _memory(model_bytes)
    limit_mem = f"{2 * int(request_mem[:-2])}Mi"

    def probe(path: str, delay: int) -> dict[str, Any]:
        return {
            "httpGet": {"path": path, "port": SERVING_PORT},
            "initialDelaySeconds": delay,
            "periodSeconds": 10,
            "timeoutSeconds": 5,
            "failureThreshold": 3,
        }

    manifest = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": name,
            "labels": {
                "app.kubernetes.io/name": name,
                "app.kubernetes.io/managed-by": "jupyter-mlops",
            },
            "annotations": {
                "mlops.jupyter.org/model": mv.ref,
                "mlops.jupyter.org/run-id": mv.run_id,
            },
        },
        "spec": {
            "predictor": {
                "minReplicas": 1,
                "containers": [
                    {
                        # KServe finds a custom predictor's container by this name, and its
                        # protocol from the PROTOCOL variable (custom containers have no
                        # protocolVersion field).
                        "name": "kserve-container",
                        "image": image,
                        "ports": [{"containerPort": SERVING_PORT, "protocol": "TCP"}],
                        "env": [
                            {"name": "PROTOCOL", "value": "v2"},
                            {"name": "MLOPS_SERVE_HOST", "value": "0.0.0.0"},
                            {"name": "MLOPS_SERVE_PORT", "value": str(SERVING_PORT)},
                            {
                                "name": "MLOPS_SERVE_TOKEN",
                                "valueFrom": {
                                    "secretKeyRef": {
                                        "name": f"{name}-serving-token",
                                        "key": "token",
                                    }
                                },
                            },
                        ],
                        "readinessProbe": probe("/v2/health/ready", 5),
                        "livenessProbe": probe("/v2/health/live", 15),
                        "resources": {
                            "requests": {"cpu": "250m", "memory": request_mem},
                            "limits": {"cpu": "1", "memory": limit_mem},
                        },
                        "securityContext": {
                            "runAsNonRoot": True,
                            "allowPrivilegeEscalation": False,
                        },
                    }
                ],
            }
        },
    }
    header = (
        f"# KServe InferenceService for {mv.ref} (jupyter_mlops {__version__}).\n"
        f"# Build and push {image} from this folder, create the Secret {name}-serving-token\n"
        "# with a key 'token', then: kubectl apply -f inferenceservice.yaml\n"
    )
    (folder / "inferenceservice.yaml").write_text(
        header + yaml.safe_dump(manifest, sort_keys=False)
    )


# -- moving the export in place -------------------------------------------------------------
def _commit(work: Path, target: Path, previous: dict[str, Any] | None) -> None:
    """Put the finished export at ``target``: a rename when it is new; otherwise the
    previous export's entries are removed and the new ones moved in."""
    if not target.exists():
        os.replace(work, target)
        return
    if previous is not None:
        for entry in [*previous.get("entries", []), EXPORT_MARKER]:
            name = str(entry)
            if not name or name in (".", "..") or "/" in name or "\\" in name:
                continue  # only plain names directly inside the export
            path = target / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
    for item in work.iterdir():
        destination = target / item.name
        if destination.is_dir() and not destination.is_symlink():
            shutil.rmtree(destination)
        os.replace(item, destination)
