"""The serving ASGI application (Starlette): Open Inference Protocol v2, MLflow's
``/invocations``, feedback, Prometheus ``/metrics`` and the OpenAPI document.

Every request is validated against the model's signature before prediction, answered in
its protocol's error format when it is bad, counted in the metrics, and appended to the
inference log; a refused prediction request is counted by reason (bad JSON, schema,
missing value, too large, ...) for monitoring. Every reply carries ``x-request-id``: the
client's when it sent a usable one, else a new one. Runs under any ASGI server;
``jupyter-mlops serve`` uses uvicorn.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .._version import __version__
from ..errors import MlopsError, NotFoundError, ValidationError
from .inference_log import NumericRows
from .metrics import CONTENT_TYPE_LATEST, ServingMetrics
from .model import ServedModel
from .protocols import (
    check_request_id,
    csv_columns,
    invocations_columns,
    oip_columns,
    oip_response,
    parse_json,
    usable_request_id,
)
from .signature import MissingValuesError

__all__ = ["ServeConfig", "ServingApp", "app_from_env", "create_app", "hash_token"]

CONFIG_ENV = "MLOPS_SERVE_CONFIG"
_INLINE_BYTES = 64 * 1024  # larger bodies are parsed and predicted in a worker thread


def hash_token(token: str) -> str:
    """How a bearer token is stored: its SHA-256, never the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class ServeConfig:
    """What one serving app serves and how (JSON-serializable, so workers get it by env)."""

    reference: str | None = None
    directory: str | None = None
    deployment_id: str | None = None
    token_hash: str | None = None
    max_body_bytes: int = 16 * 1024 * 1024
    log: bool = True
    flush_interval: float = 1.0
    retention: str | int | None = None
    follow_interval: float = 1.0
    trusted: bool = False

    def to_json(self) -> str:
        """The config as the JSON the worker processes read."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeConfig:
        """The config back from ``to_json``."""
        return cls(**json.loads(text))


class _TooLarge(MlopsError):
    code = "too_large"
    reason = "too_large"


class _Unsupported(MlopsError):
    code = "unsupported"
    reason = "unsupported_media_type"


_STATUS = {
    "not_found": 404,
    "invalid": 400,
    "query": 400,
    "signature": 422,
    "too_large": 413,
    "unsupported": 415,
    "unauthorized": 401,
    "conflict": 409,
    "locked": 503,
}


class _Unauthorized(MlopsError):
    code = "unauthorized"
    reason = "unauthorized"


PREDICTION_ROUTES = frozenset({"infer", "invocations"})
"""The routes whose refused requests are counted as rejections (traffic the model refused)."""

_REASONS = {"not_found": "not_found", "invalid": "invalid_request", "query": "invalid_request"}


def rejection_reason(exc: Exception) -> str:
    """Why a request was refused, as monitoring counts it: ``bad_json``,
    ``invalid_request``, ``schema``, ``missing_value``, ``too_large``,
    ``unsupported_media_type``, ``unauthorized``, ``not_found``, ``model_error``, ``error``."""
    return getattr(exc, "reason", None) or _REASONS.get(getattr(exc, "code", ""), "error")


class ServingApp:
    """The state behind the routes: the served model, the log, the metrics, the follower."""

    def __init__(self, config: ServeConfig, model: ServedModel | None = None, store: Any = None):
        self.config = config
        self.store = store
        self._model = model
        self._swap_lock = threading.Lock()
        self.metrics = ServingMetrics()
        self.logger: Any = None
        self.follower: Any = None
        self.started = time.time()
        self.ready = False
        self.load_error: str | None = None

    # -- model ------------------------------------------------------------------------
    @property
    def model(self) -> ServedModel:
        """The model serving right now (read once per request)."""
        if self._model is None:
            raise MlopsError(f"The model is not loaded: {self.load_error or 'still loading'}.")
        return self._model

    def swap(self, model: ServedModel) -> None:
        """Serve ``model`` from the next request on; running requests keep the old one."""
        with self._swap_lock:
            self._model = model
        self.metrics.version.labels(model.name).set(model.version)

    def startup(self) -> None:
        """Load the model, start the inference log writer and the alias follower."""
        import warnings

        from ..store import current_store
        from .inference_log import InferenceLogger, parse_retention
        from .model import FEATURE_NAMES_WARNING

        # positional models get arrays on purpose (see InputSchema.positional)
        warnings.filterwarnings("ignore", message=FEATURE_NAMES_WARNING)
        from .memory import use_system_allocator

        # the log writer's buffers go back to the OS after each flush; Arrow's default
        # pool keeps them, and a long-running server's memory would creep up
        use_system_allocator()
        cfg = self.config
        if self._model is None:
            if cfg.directory:
                from .model import load_directory

                self._model = load_directory(cfg.directory, trusted=cfg.trusted)
            else:
                from ..registry.service import get_model_version
                from .model import load_version

                self.store = self.store or current_store()
                mv = get_model_version(str(cfg.reference), self.store)
                self._model = load_version(mv, trusted=cfg.trusted)
        self.metrics.version.labels(self._model.name).set(self._model.version)
        if cfg.log:
            self.store = self.store or current_store()
            self.logger = InferenceLogger(
                self.store,
                deployment_id=cfg.deployment_id,
                flush_interval=cfg.flush_interval,
                retention=parse_retention(cfg.retention),
            )
            self.logger.start()
        if cfg.reference and not cfg.directory:
            from .follow import AliasFollower

            self.follower = AliasFollower(
                self.store,
                cfg.reference,
                lambda: self.model,
                self.swap,
                deployment_id=cfg.deployment_id,
                interval=cfg.follow_interval,
                trusted=cfg.trusted,
            )
            self.follower.start()
        self.ready = True

    def shutdown(self) -> None:
        """Flush the inference log (a clean stop loses nothing) and stop following."""
        self.ready = False
        if self.logger is not None:
            print(f"stopped; {self.logger.close()}", flush=True)
        if self.follower is not None:
            self.follower.stop()

    # -- request plumbing -------------------------------------------------------------
    def authorize(self, request: Request) -> None:
        """Check the bearer token when the deployment has one (health checks are open)."""
        expected = self.config.token_hash
        if not expected:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            hash_token(token.strip()), expected
        ):
            raise _Unauthorized(
                "This deployment needs a bearer token: send 'Authorization: Bearer <token>' "
                "with the token shown when it was deployed."
            )

    async def body(self, request: Request) -> bytes:
        """The request body, refusing more than ``max_body_bytes`` (413) without reading it all."""
        limit = self.config.max_body_bytes
        length = request.headers.get("content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                raise ValidationError("Content-Length is not a number.")
            if declared > limit:
                raise _TooLarge(
                    f"The body is {declared} bytes; this server accepts at most {limit} "
                    "(split the batch, or use mlops.predict_batch for large frames)."
                )
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _TooLarge(f"The body exceeds {limit} bytes; split the batch.")
            chunks.append(chunk)
        return b"".join(chunks)

    def check_name(self, name: str) -> ServedModel:
        """The served model, or 404 when the URL names another."""
        model = self.model
        if name != model.name:
            raise NotFoundError(f"Unknown model {name!r}; this server serves {model.name!r}.")
        return model

    def check_version(self, request: Request) -> ServedModel:
        """The served model, or 404 when the URL names another model or, under
        ``/versions/{version}``, another version than the one serving right now."""
        model = self.check_name(request.path_params["name"])
        version = request.path_params.get("version")
        if version is not None and version != str(model.version):
            raise NotFoundError(
                f"Model {model.name} with version {version} not found: this server serves "
                f"{model.name} version {model.version}."
            )
        return model

    def predict(
        self, model: ServedModel, columns: dict[str, list[Any]] | Any, outputs: tuple[str, ...]
    ) -> tuple[dict[str, Any], int, dict[str, list[Any]]]:
        """Validate, predict; returns outputs, rows, and the input columns to log."""
        if isinstance(columns, dict):
            frame = model.schema.frame(columns)
        else:  # a frame from CSV
            import pandas as pd

            raw = columns.astype(object).where(pd.notna(columns), None)
            columns = {str(c): raw[c].tolist() for c in raw.columns}
            frame = model.schema.frame(columns)
        result = model.predict(frame, outputs)
        if isinstance(frame, np.ndarray) and frame.ndim == 2:
            return result, len(frame), NumericRows(model.schema.names, frame)
        return result, len(frame), columns

    def reject(self, route: str, exc: Exception) -> None:
        """Count a refused prediction request by reason (Prometheus, and the inference log's
        rejection counts, written with its next flush)."""
        reason = rejection_reason(exc)
        self.metrics.rejected.labels(route, reason).inc()
        model = self._model
        if self.logger is not None and model is not None:
            self.logger.reject(model.name, model.version, reason, str(exc))

    def log(
        self,
        request_id: str,
        model: ServedModel,
        rows: int,
        columns: dict[str, list[Any]] | NumericRows,
        outputs: dict[str, Any],
        started: float,
    ) -> None:
        """Append one prediction to the inference log (buffered)."""
        self.metrics.rows.labels(model.name).inc(rows)
        if self.logger is not None:
            self.logger.add(
                request_id,
                model.name,
                model.version,
                rows,
                columns,
                outputs,
                (time.perf_counter() - started) * 1000.0,
            )


def _details(exc: Exception) -> dict[str, Any]:
    """Fields a client can act on, next to the message: for missing values the model
    cannot take, every offending row (positions in the request) and the rows per column."""
    if isinstance(exc, MissingValuesError):
        return {"rows": exc.rows, "columns": exc.columns}
    return {}


def _oip_error(exc: Exception) -> JSONResponse:
    status = _STATUS.get(getattr(exc, "code", ""), 500)
    return JSONResponse({"error": str(exc), **_details(exc)}, status_code=status)


def _mlflow_error(exc: Exception) -> JSONResponse:
    status = _STATUS.get(getattr(exc, "code", ""), 500)
    code = {400: "BAD_REQUEST", 404: "RESOURCE_DOES_NOT_EXIST", 422: "BAD_REQUEST"}.get(
        status, "INTERNAL_ERROR" if status >= 500 else "BAD_REQUEST"
    )
    return JSONResponse(
        {"error_code": code, "message": str(exc), **_details(exc)}, status_code=status
    )


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(payload, separators=(",", ":"), allow_nan=False),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def create_app(
    config: ServeConfig, *, model: ServedModel | None = None, store: Any = None
) -> Starlette:
    """The ASGI app for ``config`` (``model``/``store`` may be given instead of loaded)."""
    state = ServingApp(config, model, store)

    def timed(route: str, handler: Any, errors: Any = _oip_error, open_route: bool = False) -> Any:
        counted = route in PREDICTION_ROUTES  # their replies set x-request-id themselves

        async def endpoint(request: Request) -> Response:
            started = time.perf_counter()
            try:
                if not open_route:
                    state.authorize(request)
                response = await handler(request, started)
                if not counted:
                    response.headers["x-request-id"] = reply_id(request)
            except Exception as exc:
                if not isinstance(exc, MlopsError):  # a bug or the model failed: 500
                    exc = MlopsError(f"Internal error: {type(exc).__name__}: {exc}")
                response = errors(exc)
                response.headers["x-request-id"] = getattr(exc, "request_id", None) or reply_id(
                    request
                )
                if counted:
                    state.reject(route, exc)
            state.metrics.observe(route, response.status_code, time.perf_counter() - started)
            return response

        return endpoint

    async def live(request: Request, started: float) -> Response:
        return _json({"live": True})

    async def ready(request: Request, started: float) -> Response:
        if not state.ready:
            return _json({"ready": False, "error": state.load_error}, 503)
        return _json({"ready": True})

    async def server_meta(request: Request, started: float) -> Response:
        return _json({"name": "jupyter_mlops", "version": __version__, "extensions": []})

    async def model_meta(request: Request, started: float) -> Response:
        model = state.check_version(request)
        from .follow import describe

        payload = {
            "name": model.name,
            "versions": [str(model.version)],
            "platform": "sklearn",
            "inputs": model.schema.describe(),
            "outputs": model.output_metadata(),
            "parameters": {
                "estimator": model.signature.get("estimator", model.flavor),
                "classes": model.class_labels(),
                "allow_nan": model.schema.allow_nan,
                # the columns a missing value (null) may be sent in
                "missing_values": [n for n in model.schema.names if n in model.schema.missing],
                **describe(state.follower),
            },
        }
        return _json(payload)

    async def model_ready(request: Request, started: float) -> Response:
        model = state.check_version(request)
        return _json({"name": model.name, "version": str(model.version), "ready": state.ready})

    async def offload(body: bytes, work: Any) -> Any:
        """Run parsing and prediction inline for small bodies (fastest), in a worker thread
        for large ones, so health checks never wait behind a big batch."""
        if len(body) > _INLINE_BYTES:
            return await run_in_threadpool(work)
        return work()

    async def infer(request: Request, started: float) -> Response:
        model = state.check_version(request)
        _check_json(request)
        body = await state.body(request)

        def work() -> tuple[Any, ...]:
            columns, wanted, rid = oip_columns(parse_json(body), model.schema)
            try:
                return (rid, *state.predict(model, columns, tuple(wanted)))
            except MlopsError as exc:  # the reply to a request with an id carries it
                exc.request_id = rid
                raise

        rid, outputs, n, logged = await offload(body, work)
        rid = rid or reply_id(request)
        state.log(rid, model, n, logged, outputs, started)
        return _json(
            oip_response(model.name, model.version, rid, outputs), headers={"x-request-id": rid}
        )

    async def invocations(request: Request, started: float) -> Response:
        model = state.model
        ctype, params = _media_type(request, "")
        if ctype not in ("text/csv", "application/json"):
            raise _Unsupported(
                f"Content-Type {ctype or '(none)'} is not supported; send application/json "
                "(dataframe_split, dataframe_records, instances or inputs) or text/csv."
            )
        unknown = sorted(set(params) - {"charset"})
        if unknown:  # as MLflow's scoring server does
            raise _Unsupported(
                f"Content-Type parameters {unknown} are not supported; only charset=utf-8."
            )
        given = request.headers.get("x-request-id")
        rid = check_request_id(given, "X-Request-ID") if given else uuid.uuid4().hex
        body = await state.body(request)

        def work() -> tuple[Any, ...]:
            if ctype == "text/csv":
                columns: Any = csv_columns(body, model.schema)
            else:
                columns = invocations_columns(parse_json(body), model.schema)
            return state.predict(model, columns, ("predict",))

        outputs, n, logged = await offload(body, work)
        state.log(rid, model, n, logged, outputs, started)
        return _json({"predictions": outputs["predict"].tolist()}, headers={"x-request-id": rid})

    async def post_feedback(request: Request, started: float) -> Response:
        model = state.check_name(request.path_params["name"])
        _check_json(request)
        doc = parse_json(await state.body(request))
        if (
            not isinstance(doc, dict)
            or not isinstance(doc.get("request_ids"), list)
            or "labels" not in doc
            or not isinstance(doc["labels"], list)
        ):
            raise ValidationError(
                'Feedback is {"request_ids": ["..."], "labels": [...]}, one label per id.'
            )
        if not all(isinstance(r, str) for r in doc["request_ids"]):
            raise ValidationError("request_ids must be strings.")
        if state.logger is not None:  # the ids may still sit in the log buffer
            await run_in_threadpool(state.logger.flush)
        from ..store import current_store
        from .inference_log import log_feedback

        stored = await run_in_threadpool(
            log_feedback,
            doc["request_ids"],
            doc["labels"],
            model=model.name,
            store=state.store or current_store(),
        )
        return _json({"stored": stored})

    async def metrics(request: Request, started: float) -> Response:
        return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    async def openapi(request: Request, started: float) -> Response:
        from .openapi import openapi_document

        return _json(openapi_document(state._model))

    async def root(request: Request, started: float) -> Response:
        model = state._model
        return _json(
            {
                "server": "jupyter_mlops",
                "version": __version__,
                "model": model.ref if model else None,
                "ready": state.ready,
                "docs": "/openapi.json",
            }
        )

    async def mlflow_version(request: Request, started: float) -> Response:
        return Response(__version__, media_type="text/plain")

    routes = [
        Route("/", timed("/", root), methods=["GET"]),
        Route("/v2/health/live", timed("live", live, open_route=True), methods=["GET"]),
        Route("/v2/health/ready", timed("ready", ready, open_route=True), methods=["GET"]),
        Route("/v2", timed("server", server_meta), methods=["GET"]),
        Route("/v2/models/{name}", timed("model", model_meta), methods=["GET"]),
        Route("/v2/models/{name}/ready", timed("model_ready", model_ready), methods=["GET"]),
        Route("/v2/models/{name}/infer", timed("infer", infer), methods=["POST"]),
        # the same three under a version, as KServe and MLServer clients address them
        Route(
            "/v2/models/{name}/versions/{version}",
            timed("model", model_meta),
            methods=["GET"],
        ),
        Route(
            "/v2/models/{name}/versions/{version}/ready",
            timed("model_ready", model_ready),
            methods=["GET"],
        ),
        Route(
            "/v2/models/{name}/versions/{version}/infer",
            timed("infer", infer),
            methods=["POST"],
        ),
        Route("/v2/models/{name}/feedback", timed("feedback", post_feedback), methods=["POST"]),
        Route("/invocations", timed("invocations", invocations, _mlflow_error), methods=["POST"]),
        Route("/ping", timed("ping", ready, open_route=True), methods=["GET"]),
        Route("/health", timed("ping", ready, open_route=True), methods=["GET"]),
        Route("/version", timed("version", mlflow_version), methods=["GET"]),
        Route("/metrics", timed("metrics", metrics), methods=["GET"]),
        Route("/openapi.json", timed("openapi", openapi), methods=["GET"]),
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        try:
            await run_in_threadpool(state.startup)
        except Exception as exc:
            state.load_error = str(exc)
            raise
        try:
            yield
        finally:
            await run_in_threadpool(state.shutdown)

    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=_http_errors())
    app.state.serving = state
    return app


def _media_type(request: Request, default: str) -> tuple[str, dict[str, str]]:
    """The request's media type and its parameters (lower case), refusing (415) a charset
    other than UTF-8: bodies are read as UTF-8."""
    mime, *rest = request.headers.get("content-type", default).split(";")
    params = {}
    for part in rest:
        key, _, value = part.partition("=")
        if key.strip():
            params[key.strip().lower()] = value.strip().strip('"').lower()
    charset = params.get("charset", "utf-8")
    if charset not in ("utf-8", "utf8"):
        raise _Unsupported(f"charset={charset} is not supported; send UTF-8.")
    return mime.strip().lower(), params


def _check_json(request: Request) -> None:
    ctype, _ = _media_type(request, "application/json")
    if ctype not in ("application/json", ""):
        raise _Unsupported(f"Content-Type {ctype} is not supported here; send application/json.")


def reply_id(request: Request) -> str:
    """The ``x-request-id`` of a reply: the client's header when it is a usable id (1–64
    letters, digits, ``.``, ``_``, ``-``), else a new one."""
    return usable_request_id(request.headers.get("x-request-id")) or uuid.uuid4().hex


def _http_errors() -> dict[Any, Any]:
    """Starlette's own 404/405 answered as JSON too, and anything unexpected as a 500;
    each with an ``x-request-id`` like every other reply."""
    from starlette.exceptions import HTTPException

    async def handler(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        detail = getattr(exc, "detail", "error")
        if status == 404:
            detail = f"No route {request.url.path}; see /openapi.json for the routes."
        headers = {"x-request-id": reply_id(request)}
        if status == 405 and getattr(exc, "headers", None):
            headers.update(exc.headers)  # Allow: the methods the route takes
        return JSONResponse({"error": detail}, status_code=status, headers=headers)

    async def crashed(request: Request, exc: Exception) -> Response:
        return JSONResponse(
            {"error": f"Internal error: {type(exc).__name__}: {exc}"},
            status_code=500,
            headers={"x-request-id": reply_id(request)},
        )

    return {HTTPException: handler, Exception: crashed}


def app_from_env() -> Starlette:
    """The app factory uvicorn workers call: the config comes from ``MLOPS_SERVE_CONFIG``."""
    text = os.environ.get(CONFIG_ENV)
    if not text:
        raise RuntimeError(f"{CONFIG_ENV} is not set; start the server with `jupyter-mlops serve`.")
    return create_app(ServeConfig.from_json(text))
