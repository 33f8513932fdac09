"""Fuzz the serving app against its own OpenAPI document with schemathesis: whatever a
client sends, no 5xx, no crash, and every answer is a status and content type the
document declares."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from jupyter_mlops.serving.app import ServeConfig, create_app

from .serving_helpers import ThreadServer, register_churn

pytestmark = pytest.mark.slow


@pytest.fixture
def live_url(store_dir):
    register_churn(1)
    with ThreadServer(create_app(ServeConfig(reference="churn@production"))) as srv:
        yield f"http://127.0.0.1:{srv.port}"


def test_no_input_breaks_the_server(live_url):
    schema = schemathesis.openapi.from_url(f"{live_url}/openapi.json")
    checks = [status_code_conformance, content_type_conformance, response_schema_conformance]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9
    seen: dict[str, set[int]] = {}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=40,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def fuzz(case):
            response = case.call()
            label = f"{case.method} {case.path}"
            seen.setdefault(label, set()).add(response.status_code)
            assert response.status_code < 500, (label, case.body, response.text[:500])
            case.validate_response(response, checks=checks)

        fuzz()
    # the fuzzer reached the prediction routes and got answers, not just refusals
    assert seen["POST /v2/models/{name}/infer"] & {400, 404, 422}
    # and the server still predicts afterwards
    import json
    import urllib.request

    body = json.dumps({"instances": [[14.0, 20.0, 90.0, 600.0, 0.1]]}).encode()
    request = urllib.request.Request(
        f"{live_url}/invocations", body, {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.load(response)["predictions"] in ([0], [1])
