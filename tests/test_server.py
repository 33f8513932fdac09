"""The server extension's REST API with pytest-jupyter's ``jp_fetch`` against a real store:
every route, the unauthenticated walk, the error statuses, the background loop."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
from tornado.httpclient import HTTPClientError
from tornado.web import RequestHandler

import jupyter_mlops as mlops
from jupyter_mlops.server.handlers import ROUTES

from .retraining_helpers import churn_data

pytest_plugins = ["pytest_jupyter.jupyter_server"]

API = "jupyter-mlops/api"


@pytest.fixture
def jp_server_config(store_dir):
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_mlops": True}},
        "JupyterMlops": {"interval": 0},  # the tests drive the loop themselves
    }


@pytest.fixture
def registered(store_dir):
    """Two versions of ``churn`` (production → 1), trained on stored data."""
    from sklearn.linear_model import LogisticRegression

    frame = mlops.snapshot(churn_data(0, 300), "churn_train").load()
    for c in (1.0, 0.01):
        with mlops.track(f"C={c}") as run:
            mlops.load_data("churn_train@v1")
            model = LogisticRegression(C=c).fit(frame.drop(columns="churned"), frame.churned)
            mlops.log_model(model)
            mlops.log_metric("accuracy", model.score(frame.drop(columns="churned"), frame.churned))
        mlops.register(run.run_id, "churn")
    mlops.set_alias("churn", "production", 1)
    return frame


async def get(jp_fetch, *parts, **params):
    response = await jp_fetch(API, *parts, params=params)
    return json.loads(response.body)


async def send(jp_fetch, method, *parts, body=None):
    response = await jp_fetch(
        API, *parts, method=method, body=json.dumps(body or {}) if method != "DELETE" else None,
        allow_nonstandard_methods=True,
    )  # fmt: skip
    return response.code, json.loads(response.body)


async def error(jp_fetch, method, *parts, body=None):
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch(
            API, *parts, method=method,
            body=(body if isinstance(body, str) else json.dumps(body or {})) if method != "GET" and method != "DELETE" else None,
        )  # fmt: skip
    return info.value.code, json.loads(info.value.response.body)


def test_the_server_extension_is_enabled_on_install():
    out = subprocess.run(
        [sys.executable, "-m", "jupyter", "server", "extension", "list"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout + out.stderr)
    assert "jupyter_mlops enabled" in text and re.search(r"jupyter_mlops \S+ OK", text)


def test_the_sidebar_is_installed_and_enabled():
    out = subprocess.run(
        [sys.executable, "-m", "jupyter", "labextension", "list"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout + out.stderr)
    assert re.search(r"jupyter-mlops v\S+ enabled OK \(python, jupyter_mlops\)", text), text


async def test_every_route_refuses_requests_without_credentials(jp_fetch, registered):
    samples = {r"([^/@]+)": "churn", r"(\d+)": "1", r"([\w.-]+)": "d-0", r"([0-9a-f]+)": "abcdef",
               r"(enable|disable)": "enable"}  # fmt: skip
    walked = 0
    for pattern, handler in ROUTES:
        path = pattern
        for regex, value in samples.items():
            path = path.replace(regex, value)
        for method in ("GET", "POST", "DELETE"):
            if getattr(handler, method.lower()) is getattr(RequestHandler, method.lower()):
                continue  # not a method of this route
            with pytest.raises(HTTPClientError) as info:
                await jp_fetch(
                    API, *path.split("/"), method=method,
                    body="{}" if method == "POST" else None,
                    headers={"Authorization": "token not-the-token"},
                    allow_nonstandard_methods=True,
                )  # fmt: skip
            assert info.value.code in (401, 403), (method, path, info.value.code)
            walked += 1
    assert walked >= len(ROUTES)
    assert len(mlops.model_versions("churn")) == 2  # nothing changed
    assert mlops.get_model_version("churn@production").version == 1


async def test_models_versions_aliases_and_archive(jp_fetch, registered):
    version = await get(jp_fetch, "version")
    assert version["version"] == mlops.__version__
    page = await get(jp_fetch, "models")
    assert page["total"] == 1
    model = page["items"][0]
    assert (model["name"], model["latest_version"], model["aliases"]) == (
        "churn",
        2,
        {"production": 1},
    )
    assert "accuracy" in model["metrics"]
    detail = await get(jp_fetch, "models", "churn")
    assert [v["version"] for v in detail["versions"]] == [2, 1]
    code, moved = await send(jp_fetch, "POST", "models", "churn", "aliases",
                             body={"alias": "production", "version": 2, "reason": "better"})  # fmt: skip
    assert code == 200 and moved["ref"] == "churn@2"
    events = mlops.model_events("churn")
    assert events.iloc[-1][["kind", "reason"]].tolist() == ["alias_moved", "better"]
    code, body = await send(jp_fetch, "DELETE", "models", "churn", "aliases", "production")
    assert code == 200 and body["removed"] == "churn@production"
    code, body = await send(jp_fetch, "POST", "models", "churn", "versions", "1", "archive",
                            body={"reason": "old"})  # fmt: skip
    assert body == {"ref": "churn@1", "archived": True}
    # Errors: always JSON, mapped in one place.
    code, body = await error(jp_fetch, "GET", "models", "nochurn")
    assert code == 404 and body["error"] == "NotFoundError" and "nochurn" in body["message"]
    code, body = await error(jp_fetch, "POST", "models", "churn", "aliases", body={"alias": "x"})
    assert code == 400 and "Send" in body["message"]
    code, body = await error(jp_fetch, "POST", "models", "churn", "aliases", body="{not json")
    assert code == 400 and "not JSON" in body["message"]
    code, body = await error(jp_fetch, "POST", "models", "churn", "aliases",
                             body={"alias": "latest", "version": 2})  # fmt: skip
    assert code == 400
    code, body = await error(jp_fetch, "POST", "models", "churn", "aliases",
                             body={"alias": "staging", "version": 1})  # fmt: skip
    assert code == 409 and "archived" in body["message"]
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch(API, "models", params={"limit": "lots"})
    assert info.value.code == 400
    assert len(mlops.model_versions("churn", include_archived=True)) == 2


async def test_retraining_policies_and_jobs(jp_fetch, registered):
    mlops.snapshot(churn_data(5, 200), "churn_holdout")
    code, policy = await send(jp_fetch, "POST", "retraining", "policies",
                              body={"model": "churn", "on": ["new_data"], "holdout": "churn_holdout@v1"})  # fmt: skip
    assert code == 201 and policy["on"] == "new_data" and policy["enabled"]
    code, policy = await send(jp_fetch, "POST", "retraining", "policies", "churn", "disable")
    assert policy["enabled"] is False
    listed = await get(jp_fetch, "retraining", "policies")
    assert [p["model"] for p in listed] == ["churn"]
    code, body = await error(jp_fetch, "POST", "retraining", "policies",
                             body={"model": "churn", "on": ["drfit"]})  # fmt: skip
    assert code == 400 and "Unknown trigger" in body["message"]
    code, body = await error(
        jp_fetch, "POST", "retraining", "jobs", body={"model": "churn", "gate": ["acc > 1"]}
    )
    assert code == 400 and "unknown metric" in body["message"]
    jobs = await get(jp_fetch, "retraining", "jobs")
    assert jobs["total"] == 0
    runs = await get(jp_fetch, "runs", limit=5)
    assert len(runs) == 2 and runs[0]["name"] == "C=0.01"
    run = await get(jp_fetch, "runs", runs[0]["run_id"])
    assert run["metrics"]["accuracy"] > 0.5 and run["params"]
    code, body = await error(jp_fetch, "GET", "runs", "abcdef")
    assert code == 404
    code, body = await error(jp_fetch, "GET", "retraining", "jobs", "abcdef")
    assert code == 404


async def test_the_background_loop_runs_due_policies_with_a_controlled_clock(
    jp_fetch, jp_serverapp, registered
):
    loop = jp_serverapp.web_app.settings["jupyter_mlops"]["loop"]
    mlops.snapshot(churn_data(5, 200), "churn_holdout")
    mlops.retrain_policy("churn", on="schedule", schedule="0 3 * * *", holdout="churn_holdout@v1")
    policy = mlops.retraining_policies().iloc[0]
    due = policy.next_run.timestamp()
    before = await loop.tick(now=due - 60)
    assert before["jobs"] == [] and loop.rounds == 1
    # The round runs in the executor: the server answers while it works.
    started = time.perf_counter()
    round_ = loop.tick(now=due + 1)
    version = await get(jp_fetch, "version")
    assert version["version"] and time.perf_counter() - started < 5
    after = await round_
    assert len(after["jobs"]) == 1, after
    jobs = await get(jp_fetch, "retraining", "jobs")
    assert jobs["total"] == 1 and jobs["items"][0]["trigger"].startswith("schedule: ")
    summary = await get(jp_fetch, "summary")
    assert summary["models"]["total"] == 1 and summary["jobs"]["total"] == 1
    assert summary["policies"][0]["model"] == "churn"


@pytest.mark.parametrize(
    ("parts", "body", "field", "expected"),
    [
        (("retraining", "policies"), {"model": "churn", "on": 5}, "on", "a string or a list"),
        (("retraining", "policies"), {"model": "churn", "gate": 5}, "gate", "a string or a list"),
        (("retraining", "policies"), {"model": "churn", "parameters": 5}, "parameters", "an object"),
        (("retraining", "policies"), {"model": "churn", "data": {"df": 1}}, "data", "an object of strings"),
        (("retraining", "policies"), {"model": "churn", "enabled": "yes"}, "enabled", "a boolean"),
        (("retraining", "policies"), {"model": "churn", "cooldown": True}, "cooldown", "a string or a number"),
        (("retraining", "policies"), {"model": "churn", "watch": "churn_train"}, "watch", "a list of strings"),
        (("retraining", "jobs"), {"model": "churn", "gate": {"accuracy": 1}}, "gate", "a string or a list"),
        (("retraining", "jobs"), {"model": "churn", "holdout": 3}, "holdout", "a string"),
        (("models", "churn", "aliases"), {"alias": "production", "version": True}, "version", "an integer"),
        (("models", "churn", "aliases"), {"alias": "production", "version": 2, "reason": 1}, "reason", "a string"),
        (("models", "churn", "versions", "1", "archive"), {"reason": ["old"]}, "reason", "a string"),
        (("deployments",), {"reference": "churn@production", "port": "8080"}, "port", "an integer"),
        (("deployments",), {"reference": "churn@production", "workers": 1.5}, "workers", "an integer"),
    ],
)  # fmt: skip
async def test_fields_of_the_wrong_type_are_refused_before_any_change(
    jp_fetch, registered, parts, body, field, expected
):
    code, answer = await error(jp_fetch, "POST", *parts, body=body)
    assert code == 400 and answer["error"] == "ValidationError", answer
    assert answer["message"].startswith(f"{field} must be {expected}"), answer["message"]
    assert mlops.retraining_policies().empty
    assert (await get(jp_fetch, "retraining", "jobs"))["total"] == 0
    assert mlops.get_model_version("churn@production").version == 1
    assert [v.archived for v in map(mlops.get_model_version, ("churn@1", "churn@2"))] == [False] * 2
    assert (await get(jp_fetch, "deployments")) == []


async def test_retrain_now_without_a_policy_says_how_to_set_one(jp_fetch, registered):
    code, body = await error(jp_fetch, "POST", "retraining", "jobs", body={"model": "churn"})
    assert code == 400 and body["error"] == "ValidationError"
    assert body["message"] == (
        'churn has no retraining policy: set one with mlops.retrain_policy("churn", '
        'holdout="name@vN", gate=[...]); the sidebar\'s Retrain uses it. Or send '
        "retrain()'s options (GET retraining/defaults/churn gives a starting point)."
    )
    assert (await get(jp_fetch, "retraining", "jobs"))["total"] == 0


async def test_retrain_now_with_a_policy_submits_its_spec(jp_fetch, registered, monkeypatch):
    import jupyter_mlops.retraining.jobs as jobs
    from jupyter_mlops.retraining.policy import get_policy

    mlops.snapshot(churn_data(5, 200), "churn_holdout")
    mlops.retrain_policy("churn", on="drift", holdout="churn_holdout@v1")
    submitted = []

    def fake_submit(model, spec, fired, store=None):
        submitted.append((model, spec, fired))
        return types.SimpleNamespace(job=model)

    monkeypatch.setattr(jobs, "submit_job", fake_submit)
    monkeypatch.setattr(
        "jupyter_mlops.server.payloads.job_payload",
        lambda job: {"job_id": "0123456789", "model": job.job, "merged": False},
    )
    code, body = await send(jp_fetch, "POST", "retraining", "jobs", body={"model": "churn"})
    assert code == 201 and body["model"] == "churn"
    [(model, spec, _)] = submitted
    assert model == "churn" and spec == get_policy("churn").spec


async def test_a_locked_store_answers_503(jp_fetch, registered, monkeypatch):
    from jupyter_mlops.errors import StoreLockedError
    from jupyter_mlops.server import payloads

    def locked(*args, **kwargs):
        raise StoreLockedError("The store stayed locked; try again.")

    monkeypatch.setattr(payloads, "summary_payload", locked)
    code, body = await error(jp_fetch, "GET", "summary")
    assert code == 503 and body == {
        "error": "StoreLockedError",
        "message": "The store stayed locked; try again.",
        "status": 503,
    }


def test_job_payload_says_whether_the_request_was_merged():
    from jupyter_mlops.retraining.jobs import RetrainingJob
    from jupyter_mlops.server.payloads import job_payload

    assert "merged" in {f.name for f in dataclasses.fields(RetrainingJob)}
    job = types.SimpleNamespace(
        to_row=lambda: {"job_id": "abc"}, created=1.0, started=None, ended=None,
        triggers=[], steps=[], gate=None, holdout=None, merged=True,
    )  # fmt: skip
    assert job_payload(job)["merged"] is True
    job.merged = False
    assert job_payload(job)["merged"] is False


def test_the_openapi_document_lists_every_route_and_method():
    import yaml
    from tornado.web import RequestHandler

    import jupyter_mlops.server as server_package

    doc = yaml.safe_load((Path(server_package.__file__).parent / "openapi.yaml").read_text())
    assert doc["info"]["version"] == mlops.__version__
    documented = {
        (re.sub(r"\{[^}]+\}", "{}", path), method.upper())
        for path, item in doc["paths"].items()
        for method in item
    }
    served = set()
    for pattern, handler in ROUTES:
        path = "/" + re.sub(r"\([^)]*\)", "{}", pattern)
        if "(enable|disable)" in pattern:
            paths = [path.rsplit("/", 1)[0] + "/enable", path.rsplit("/", 1)[0] + "/disable"]
        else:
            paths = [path]
        for method in ("get", "post", "delete"):
            if getattr(handler, method) is not getattr(RequestHandler, method):
                served |= {(p, method.upper()) for p in paths}
    assert documented == served


@pytest.fixture
def project_root(jp_server_config, jp_root_dir, monkeypatch):
    """The server's root folder holds the project's store; no MLOPS_HOME (as in a plain
    `jupyter lab` started in a project)."""
    monkeypatch.delenv("MLOPS_HOME", raising=False)
    monkeypatch.delenv("MLOPS_DB_URL", raising=False)
    monkeypatch.delenv("MLOPS_ARTIFACTS_URL", raising=False)
    store = mlops.open_store(jp_root_dir / ".mlops")
    with mlops.track("in the project", capture=False):
        mlops.log_metric("accuracy", 0.9)
    return store


async def test_the_server_uses_the_store_of_its_root_folder(project_root, jp_fetch, jp_root_dir):
    version = await get(jp_fetch, "version")
    assert str(jp_root_dir / ".mlops") in version["store"]
    runs = await get(jp_fetch, "runs")
    assert [r["name"] for r in runs] == ["in the project"]
    # A run tracked afterwards (as from a notebook) shows without a restart.
    with mlops.track("later", capture=False):
        mlops.log_metric("accuracy", 0.95)
    runs = await get(jp_fetch, "runs")
    assert [r["name"] for r in runs] == ["later", "in the project"]


async def test_the_summary_pages_models_and_jobs_as_asked(jp_fetch, registered):
    for i in range(3):
        mlops.register(mlops.get_model_version("churn@1").run_id, f"extra{i}")
    first = await get(jp_fetch, "summary", models=2, jobs=5)
    assert first["models"]["total"] == 4 and len(first["models"]["items"]) == 2
    more = await get(jp_fetch, "summary", models=4)
    assert [m["name"] for m in more["models"]["items"]] == ["churn", "extra0", "extra1", "extra2"]
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch(API, "summary", params={"models": "-1"})
    assert info.value.code == 400


@pytest.mark.slow
async def test_a_restart_keeps_every_option_the_deployment_had(jp_fetch, registered, store_dir):
    """The sidebar's Restart (``deployments/{id}/restart``) used to redeploy with only the
    reference, port and workers: a deployment on another interface with a token came back
    on 127.0.0.1 without it. It keeps host, port, token, workers, logging, retention and
    the body limit; trust only when the request gives it again."""
    from jupyter_mlops.serving.deployments import deploy
    from jupyter_mlops.serving.launcher import stop_launcher
    from jupyter_mlops.store import current_store, schema

    from .serving_helpers import Client, group_members, processes_mentioning

    def row(deployment_id):
        with current_store().read() as conn:
            dep = schema.deployments
            return conn.execute(dep.select().where(dep.c.deployment_id == deployment_id)).first()

    features = registered.drop(columns="churned").iloc[:2]
    body = {
        "inputs": [
            {
                "name": c,
                "shape": [2],
                "datatype": "FP64",
                "data": features[c].astype(float).tolist(),
            }
            for c in features.columns
        ]
    }
    try:
        first = deploy(  # the service function: the API has no max_body_mb argument
            "churn@production",
            host="127.0.0.2",  # another interface than the default 127.0.0.1
            token="team-secret-token",
            workers=2,
            trusted=True,
            log=False,
            retention="7d",
            max_body_mb=2,
        )
        before = row(first.deployment_id)
        # trust is never read back from the store: the caller gives it again
        code, out = await send(
            jp_fetch, "POST", "deployments", first.deployment_id, "restart", body={"trusted": True}
        )
        assert code == 201 and out["status"] == "running", out
        assert out["deployment_id"] != first.deployment_id and out["url"] == first.url
        after = row(out["deployment_id"])
        assert (after.host, after.port, after.workers) == ("127.0.0.2", first.port, 2)
        assert after.token_hash == before.token_hash  # clients keep their token
        kept = json.loads(after.options)
        for key in ("auth", "trusted", "log", "retention", "max_body_bytes"):
            assert kept[key] == json.loads(before.options)[key], key
        assert kept["restarted_from"] == first.deployment_id
        assert row(first.deployment_id).status == "stopped"

        c = Client(first.port, host="127.0.0.2")
        assert c.post("/v2/models/churn/infer", body)[0] == 401
        good = {"Authorization": "Bearer team-secret-token"}
        status, _, answer = c.post("/v2/models/churn/infer", body, headers=good)
        assert status == 200, answer
        big = {
            "inputs": [{"name": "x", "shape": [1], "datatype": "BYTES", "data": ["x" * 3_000_000]}]
        }
        assert c.post("/v2/models/churn/infer", big, headers=good)[0] == 413
        c.close()
        assert len(group_members(after.pid)) >= 3  # the supervisor and its two workers
        assert mlops.inference_log("churn").empty  # log=False is kept as well
    finally:
        for d in mlops.deployments().itertuples():
            mlops.undeploy(d.deployment_id)
        stop_launcher(store_dir)
    assert processes_mentioning(str(store_dir)) == []


@pytest.mark.slow
async def test_retrain_without_a_policy_from_the_models_defaults(jp_fetch, ip, store_dir):
    """The sidebar offers Retrain on every model: without a policy it opens a form filled
    from ``retraining/defaults/{model}`` and submits it as the job's options."""
    from jupyter_mlops.serving.launcher import stop_launcher

    from .retraining_helpers import new_world, train_champion
    from .serving_helpers import processes_mentioning

    champion = train_champion(ip)
    new_world()  # churn_train@v2 arrives
    defaults = await get(jp_fetch, "retraining", "defaults", "churn")
    assert defaults == {
        "model": "churn",
        "champion": "churn@1",
        "champion_alias": "production",
        "data": {"df": "churn_train@latest"},
        "gate": ["metrics.accuracy >= champion.metrics.accuracy"],
        "holdout": None,
        "target": None,
        "promote": "production",
        "metrics": list(champion.run.metrics),
        "policy": False,
    }
    code, body = await error(jp_fetch, "GET", "retraining", "defaults", "nope")
    assert code == 404 and "nope" in body["message"]
    form = {k: defaults[k] for k in ("data", "gate", "holdout", "target", "promote")}
    bad = {**form, "data": {"df": "churn_tran@latest"}}  # a typo: refused, nothing queued
    code, body = await error(jp_fetch, "POST", "retraining", "jobs", body={"model": "churn", **bad})
    assert code == 404 and "churn_tran" in body["message"], body
    assert (await get(jp_fetch, "retraining", "jobs"))["total"] == 0
    try:
        code, job = await send(
            jp_fetch, "POST", "retraining", "jobs", body={"model": "churn", **form}
        )
        assert code == 201 and job["kind"] == "retrain" and job["status"] in ("queued", "running")
        deadline = time.monotonic() + 180
        while job["status"] in ("queued", "running") and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            job = await get(jp_fetch, "retraining", "jobs", job["job_id"])
        assert job["status"] == "finished", job["error"]
        assert job["champion"] == "churn@1" and job["challenger"] == "churn@2"
        checks = [line["check"] for line in job["gate"]["lines"]]
        assert "metrics.accuracy >= champion.metrics.accuracy" in checks, job["gate"]
        assert (
            job["gate"]["passed"]
            is job["promoted"]
            is (mlops.get_model_version("churn@production").version == 2)
        )
        run = mlops.get_run(job["run_id"])
        assert run.parent_run_id == champion.run_id
        assert [i["name"] for i in run.inputs if i["role"] == "input"] == ["df"]
    finally:
        stop_launcher(store_dir)
    deadline = time.monotonic() + 30
    while processes_mentioning(str(store_dir)) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert processes_mentioning(str(store_dir)) == []


@pytest.mark.slow
async def test_the_sidebar_sees_starting_then_running_and_the_drift_of_the_version_served(
    jp_fetch, registered, store_dir
):
    """While Deploy waits (here for the store's launcher to import), the deployment is
    ``starting``, never ``dead``; the drift badge is the one of the version it serves
    now, not of the version it served before the alias moved and it was restarted."""
    from jupyter_mlops.serving.launcher import stop_launcher

    from .retraining_helpers import FEATURES
    from .serving_helpers import Client, oip_body, processes_mentioning

    seen = []
    try:
        deploying = asyncio.ensure_future(
            send(jp_fetch, "POST", "deployments", body={"reference": "churn@production"})
        )
        while not deploying.done():
            for item in await get(jp_fetch, "deployments"):
                seen.append((item["status"], item["message"]))
            await asyncio.sleep(0.05)
        code, first = deploying.result()
        assert code == 201 and first["status"] == "running"
        statuses = [status for status, _ in seen]
        assert "starting" in statuses, seen
        assert set(statuses) <= {"starting", "running"}, seen
        assert all(message is None for status, message in seen if status == "starting"), seen

        mlops.set_monitor("churn@production", window="1h", min_rows=100)
        port = int(first["url"].rsplit(":", 1)[1])
        traffic = churn_data(3, 200, shift=3.0)[FEATURES]  # calls shifted: drift
        client = Client(port)
        for start in range(0, len(traffic), 50):
            status, _, out = client.post(
                "/v2/models/churn/infer", oip_body(traffic.iloc[start : start + 50])
            )
            assert status == 200, out
        client.close()
        deadline = time.monotonic() + 30  # the inference log is written once a second
        while len(mlops.inference_log("churn")) < len(traffic) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        code, check = await send(jp_fetch, "POST", "monitoring", "churn", "check")
        assert check["version"] == 1 and "calls" in check["drifted"], check
        [item] = await get(jp_fetch, "deployments")
        assert item["version"] == 1 and item["drift"]["version"] == 1
        assert "calls" in item["drift"]["drifted"]

        await send(jp_fetch, "POST", "models", "churn", "aliases",
                   body={"alias": "production", "version": 2, "reason": "test"})  # fmt: skip
        code, fresh = await send(jp_fetch, "POST", "deployments", first["deployment_id"], "restart")
        assert code == 201 and fresh["version"] == 2, fresh
        [item] = await get(jp_fetch, "deployments")
        assert item["deployment_id"] == fresh["deployment_id"] and item["version"] == 2
        assert item["drift"] is None  # not v1's drift: v2 has not been checked
        monitoring = await get(jp_fetch, "monitoring")
        assert monitoring[0]["last_check"]["version"] == 1  # the model's history is kept
    finally:
        for d in mlops.deployments().itertuples():
            mlops.undeploy(d.deployment_id)
        stop_launcher(store_dir)
    assert processes_mentioning(str(store_dir)) == []
