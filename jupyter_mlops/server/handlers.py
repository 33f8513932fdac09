"""REST handlers under ``/jupyter-mlops/api/``: thin wrappers that parse the request, run
one service call in the executor and write JSON.

Every handler is ``@tornado.web.authenticated`` (JupyterLab's token or cookie; XSRF is
checked on writes by ``APIHandler``). Errors map to statuses in one place (``_STATUS``):
validation 400, unknown 404, conflict 409, a store locked past its busy timeout 503, our
other failures 500; the body is always JSON ``{"error", "message", "status"}``. Request
fields are type-checked (``checked``) before any service sees them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from functools import partial
from typing import Any

import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join

from .._version import __version__
from ..errors import (
    ConflictError,
    MlopsError,
    NotFoundError,
    StoreLockedError,
    UntrustedModelError,
    ValidationError,
)
from . import payloads

__all__ = ["API_PREFIX", "ROUTES", "setup_handlers"]

API_PREFIX = "jupyter-mlops/api"

_STATUS: list[tuple[type[Exception], int]] = [
    (ValidationError, 400),
    (UntrustedModelError, 403),
    (NotFoundError, 404),
    (ConflictError, 409),
    (StoreLockedError, 503),
    (MlopsError, 500),
]


class MlopsHandler(APIHandler):
    """Base: the store, the loop, JSON bodies, the executor and the error mapping."""

    @property
    def store(self) -> Any:
        return self.settings["jupyter_mlops"]["store"]

    @property
    def automation(self) -> Any:
        return self.settings["jupyter_mlops"]["loop"]

    def body(self) -> dict[str, Any]:
        if not self.request.body:
            return {}
        try:
            data = json.loads(self.request.body)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"The request body is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ValidationError("The request body must be a JSON object.")
        return data

    def int_arg(self, name: str, default: int, maximum: int = 1000) -> int:
        text = self.get_argument(name, str(default))
        try:
            value = int(text)
        except ValueError:
            raise ValidationError(f"{name} must be an integer, got {text!r}.") from None
        if not 0 <= value <= maximum:
            raise ValidationError(f"{name} must be between 0 and {maximum}.")
        return value

    async def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a blocking service call in the executor (never on the event loop)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, partial(fn, *args, **kwargs))

    def reply(self, value: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(payloads.clean(value)))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = getattr(exc, "log_message", None) or str(exc or "") or self._reason
        self.set_header("Content-Type", "application/json")
        self.finish(
            json.dumps(
                {
                    "error": type(exc).__name__ if exc else "HTTPError",
                    "message": message,
                    "status": status_code,
                }
            )
        )

    def _handle_request_exception(self, e: BaseException) -> None:
        for kind, status in _STATUS:
            if isinstance(e, kind):
                if self._finished:
                    return
                self.set_status(status)
                self.finish(
                    json.dumps({"error": type(e).__name__, "message": str(e), "status": status})
                )
                if status >= 500:
                    self.log.warning("jupyter_mlops: %s", e)
                return
        super()._handle_request_exception(e)


def _is_str(v: Any) -> bool:
    return isinstance(v, str)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _is_str_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _is_str_dict(v: Any) -> bool:
    return isinstance(v, dict) and all(isinstance(x, str) for x in v.values())


# field: (check, expected type as the message names it, null allowed: the service default)
_FIELDS: dict[str, tuple[Callable[[Any], bool], str, bool]] = {
    "on": (lambda v: _is_str(v) or _is_str_list(v), "a string or a list of strings", False),
    "schedule": (_is_str, "a string", True),
    "data": (_is_str_dict, "an object of strings", True),
    "notebook": (_is_str, "a string", True),
    "parameters": (lambda v: isinstance(v, dict), "an object", True),
    "gate": (lambda v: _is_str(v) or _is_str_list(v), "a string or a list of strings", True),
    "holdout": (_is_str, "a string", True),
    "target": (_is_str, "a string", True),
    "promote": (_is_str, "a string", True),
    "cooldown": (lambda v: _is_str(v) or _is_number(v), "a string or a number", False),
    "watch": (_is_str_list, "a list of strings", True),
    "enabled": (lambda v: isinstance(v, bool), "a boolean", False),
    "trusted": (lambda v: isinstance(v, bool), "a boolean", False),
    "reason": (_is_str, "a string", True),
    "alias": (_is_str, "a string", False),
    "version": (_is_int, "an integer", False),
    "reference": (_is_str, "a string", False),
    "port": (_is_int, "an integer", True),
    "workers": (_is_int, "an integer", False),
}


def checked(body: dict[str, Any], fields: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """The given ``fields`` of ``body`` (those present), each type-checked: a wrong type
    raises ValidationError (400) naming the field and the type expected."""
    out = {}
    for name in fields:
        if name not in body:
            continue
        value = body[name]
        check, expected, nullable = _FIELDS[name]
        if value is None and nullable:
            out[name] = value
            continue
        if not check(value):
            raise ValidationError(
                f"{name} must be {expected}, got {json.dumps(value)} ({_json_type(value)})."
            )
        out[name] = value
    return out


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _alias_body(body: dict[str, Any]) -> tuple[str, int, str | None]:
    if not isinstance(body.get("alias"), str) or body.get("version") is None:
        raise ValidationError('Send {"alias": "production", "version": 3, "reason": "…"}.')
    fields = checked(body, ("alias", "version", "reason"))
    return fields["alias"], fields["version"], fields.get("reason")


class VersionHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        self.reply({"version": __version__, "store": self.store.describe()})


class SummaryHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        models, jobs = self.int_arg("models", 50), self.int_arg("jobs", 30)
        self.reply(
            await self.run(
                payloads.summary_payload,
                self.store,
                self.automation.traffic,
                models=models,
                jobs=jobs,
            )
        )


class ModelsHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        offset, limit = self.int_arg("offset", 0, 10**6), self.int_arg("limit", 50)
        self.reply(await self.run(payloads.models_payload, self.store, offset=offset, limit=limit))


class ModelHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        self.reply(await self.run(payloads.model_payload, self.store, name))


class AliasesHandler(MlopsHandler):
    @tornado.web.authenticated
    async def post(self, name: str) -> None:
        from ..registry.service import set_alias

        alias, version, reason = _alias_body(self.body())
        mv = await self.run(set_alias, name, alias, version, reason=reason, store=self.store)
        self.reply({"ref": mv.ref, "aliases": mv.aliases})


class AliasHandler(MlopsHandler):
    @tornado.web.authenticated
    async def delete(self, name: str, alias: str) -> None:
        from ..registry.service import remove_alias

        reason = self.get_argument("reason", None)
        await self.run(remove_alias, name, alias, reason=reason, store=self.store)
        self.reply({"removed": f"{name}@{alias}"})


class ArchiveHandler(MlopsHandler):
    @tornado.web.authenticated
    async def post(self, name: str, version: str) -> None:
        from ..registry.service import archive

        reason = checked(self.body(), ("reason",)).get("reason")
        mv = await self.run(archive, f"{name}@{version}", reason=reason, store=self.store)
        self.reply({"ref": mv.ref, "archived": mv.archived})


def _deployment_dict(d: Any) -> dict[str, Any]:
    return {
        "deployment_id": d.deployment_id,
        "reference": d.reference,
        "model": d.model_name,
        "version": d.version,
        "status": d.state,
        "url": d.url if d.port else None,
        "message": d.message,
    }


class DeploymentsHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        self.reply(
            await self.run(payloads.deployments_payload, self.store, self.automation.traffic)
        )

    @tornado.web.authenticated
    async def post(self) -> None:
        from ..serving.deployments import deploy

        body = self.body()
        reference = body.get("reference")
        if not isinstance(reference, str) or not reference:
            raise ValidationError('Send {"reference": "churn@production"}.')
        options = checked(body, ("port", "workers"))
        d = await self.run(deploy, reference, store=self.store, **options)
        self.reply(_deployment_dict(d), 201)


def _find_deployment(store: Any, deployment_id: str) -> Any:
    from ..serving.deployments import get_deployment

    return get_deployment(deployment_id, store=store)


class DeploymentStopHandler(MlopsHandler):
    @tornado.web.authenticated
    async def post(self, deployment_id: str) -> None:
        d = await self.run(_find_deployment, self.store, deployment_id)
        stopped = await self.run(d.stop)
        self.reply(_deployment_dict(stopped))


class DeploymentRestartHandler(MlopsHandler):
    @tornado.web.authenticated
    async def post(self, deployment_id: str) -> None:
        from ..serving.deployments import restart_deployment

        # trust is the caller's to give again ({"trusted": true}), never read back from the store
        trusted = checked(self.body(), ("trusted",)).get("trusted", False)
        fresh = await self.run(restart_deployment, deployment_id, trusted=trusted, store=self.store)
        self.reply(_deployment_dict(fresh), 201)


class DeploymentLogsHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self, deployment_id: str) -> None:
        lines = self.int_arg("lines", 50, 5000)
        d = await self.run(_find_deployment, self.store, deployment_id)
        self.reply({"deployment_id": deployment_id, "logs": await self.run(d.logs, lines)})


class MonitoringHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        self.reply(await self.run(payloads.monitoring_payload, self.store))


class CheckHandler(MlopsHandler):
    @tornado.web.authenticated
    async def post(self, model: str) -> None:
        from ..monitoring.monitor import check

        outcome = await self.run(check, model, store=self.store)
        self.reply(
            {
                "model": outcome.model,
                "version": outcome.version,
                "state": outcome.state,
                "rows": outcome.rows,
                "drifted": list(outcome.report.drifted) if outcome.report is not None else [],
                "opened": outcome.opened,
                "checks": [r.line for r in outcome.checks],
            }
        )


class PoliciesHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        self.reply(await self.run(payloads.policies_payload, self.store))

    @tornado.web.authenticated
    async def post(self) -> None:
        from ..retraining.policy import retrain_policy

        body = self.body()
        model = body.pop("model", None)
        if not isinstance(model, str):
            raise ValidationError('Send {"model": "churn", "on": ["drift"], ...}.')
        allowed = {"on", "schedule", "data", "notebook", "parameters", "gate", "holdout",
                   "target", "promote", "cooldown", "watch", "enabled"}  # fmt: skip
        unknown = set(body) - allowed
        if unknown:
            raise ValidationError(
                f"Unknown policy fields {sorted(unknown)}; use {sorted(allowed)}."
            )
        options = checked(body, sorted(allowed))
        policy = await self.run(retrain_policy, model, store=self.store, **options)
        self.reply(policy.to_row(), 201)


class PolicyStateHandler(MlopsHandler):
    @tornado.web.authenticated
    async def post(self, model: str, action: str) -> None:
        from ..retraining.policy import set_policy_enabled

        policy = await self.run(set_policy_enabled, model, action == "enable", store=self.store)
        self.reply(policy.to_row())


class JobsHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        model = self.get_argument("model", None)
        offset, limit = self.int_arg("offset", 0, 10**6), self.int_arg("limit", 50)
        self.reply(
            await self.run(
                payloads.jobs_payload, self.store, model=model, offset=offset, limit=limit
            )
        )

    @tornado.web.authenticated
    async def post(self) -> None:
        body = self.body()
        model = body.pop("model", None)
        if not isinstance(model, str):
            raise ValidationError('Send {"model": "churn"} (and retrain()\'s options).')
        allowed = {"data", "notebook", "parameters", "gate", "holdout", "target", "promote"}
        unknown = set(body) - allowed
        if unknown:
            raise ValidationError(f"Unknown fields {sorted(unknown)}; use {sorted(allowed)}.")
        options = checked(body, sorted(allowed))
        job = await self.run(_retrain_now, self.store, model, options)
        self.reply(payloads.job_payload(job), 201)


def _retrain_now(store: Any, model: str, options: dict[str, Any]) -> Any:
    """A job now: with the options given, else with the model's policy (its data, gate,
    holdout); with neither, a ValidationError that says how to set a policy."""
    from ..retraining.jobs import submit_job, trigger
    from ..retraining.policy import get_policy
    from ..retraining.service import retrain

    if not options:
        try:
            policy = get_policy(model, store)
        except NotFoundError:
            policy = None
        if policy is None:
            name = model.split("@", 1)[0]
            raise ValidationError(
                f"{name} has no retraining policy: set one with mlops.retrain_policy("
                f'"{name}", holdout="name@vN", gate=[...]); the sidebar\'s Retrain uses it. '
                "Or send retrain()'s options (GET retraining/defaults/"
                f"{name} gives a starting point)."
            )
        return submit_job(policy.model, policy.spec, trigger("manual", "sidebar"), store=store)
    return retrain(model, wait=False, store=store, **options)


def _retrain_defaults(store: Any, model: str) -> dict[str, Any]:
    from ..retraining.policy import get_policy
    from ..retraining.service import retrain_defaults

    defaults = retrain_defaults(model, store=store)
    try:
        get_policy(defaults["model"], store)
        defaults["policy"] = True
    except NotFoundError:
        defaults["policy"] = False
    return defaults


class RetrainDefaultsHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self, model: str) -> None:
        self.reply(await self.run(_retrain_defaults, self.store, model))


class JobHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self, job_id: str) -> None:
        from ..retraining.jobs import get_job

        job = await self.run(get_job, job_id, self.store)
        self.reply(payloads.job_payload(job))


class RunsHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        limit = self.int_arg("limit", 20)
        self.reply(await self.run(payloads.runs_payload, self.store, limit=limit))


class RunHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self, run_id: str) -> None:
        self.reply(await self.run(payloads.run_payload, self.store, run_id))


_NAME = r"([^/@]+)"
ROUTES: list[tuple[str, type[MlopsHandler]]] = [
    ("version", VersionHandler),
    ("summary", SummaryHandler),
    ("models", ModelsHandler),
    (f"models/{_NAME}", ModelHandler),
    (f"models/{_NAME}/aliases", AliasesHandler),
    (f"models/{_NAME}/aliases/{_NAME}", AliasHandler),
    (f"models/{_NAME}/versions/(\\d+)/archive", ArchiveHandler),
    ("deployments", DeploymentsHandler),
    ("deployments/([\\w.-]+)/stop", DeploymentStopHandler),
    ("deployments/([\\w.-]+)/restart", DeploymentRestartHandler),
    ("deployments/([\\w.-]+)/logs", DeploymentLogsHandler),
    ("monitoring", MonitoringHandler),
    (f"monitoring/{_NAME}/check", CheckHandler),
    ("retraining/policies", PoliciesHandler),
    (f"retraining/policies/{_NAME}/(enable|disable)", PolicyStateHandler),
    ("retraining/jobs", JobsHandler),
    ("retraining/jobs/([0-9a-f]+)", JobHandler),
    (f"retraining/defaults/{_NAME}", RetrainDefaultsHandler),
    ("runs", RunsHandler),
    ("runs/([0-9a-f]+)", RunHandler),
]


def setup_handlers(web_app: Any) -> None:
    """Add the routes to the server's tornado application."""
    base = web_app.settings.get("base_url", "/")
    web_app.add_handlers(
        ".*$",
        [(url_path_join(base, API_PREFIX, path) + "/?$", handler) for path, handler in ROUTES],
    )
