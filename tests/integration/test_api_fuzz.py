"""schemathesis generates requests from the API's own OpenAPI document: no input gives a 5xx."""

from __future__ import annotations

import json

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="the API fuzz test needs schemathesis (dev extra)")
from handlers.api import openapi  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

schema = schemathesis.openapi.from_dict(json.loads(openapi()))


@schema.parametrize()
@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_answers_5xx(case, info):
    response = case.call(base_url=info.api_url)
    assert response.status_code < 500, (case.method, case.formatted_path, case.query, response.text)
    content_type = response.headers.get("content-type", [""])  # schemathesis: lower-case keys, lists
    assert content_type[0].startswith("application/json"), (case.method, response.headers)
    if response.status_code >= 400:
        body = response.json()  # an unknown tag or category also gets close matches to suggest
        assert "error" in body and set(body) <= {"error", "suggestions"} and "Traceback" not in body["error"]
