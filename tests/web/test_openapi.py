"""The API's published contract, docs/openapi.json: served as it is, a valid OpenAPI 3.1
document, and describing exactly the routes the app has (a new route without docs fails)."""

from __future__ import annotations

import json
import re

from openapi_spec_validator import OpenAPIV31SpecValidator

from tests.conftest import ROOT

DOCUMENT = ROOT / "docs" / "openapi.json"
IGNORED_METHODS = {"HEAD", "OPTIONS"}  # Flask answers these for every route by itself
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def test_the_document_is_served_as_it_is_without_a_token_and_cacheable(app):
    client = app.test_client()
    served = client.get("/api/v1/openapi.json")
    assert served.status_code == 200
    assert served.mimetype == "application/json"
    assert served.data == DOCUMENT.read_bytes()
    assert served.headers["Cache-Control"] == "public, max-age=3600"
    etag = served.headers["ETag"]
    again = client.get("/api/v1/openapi.json", headers={"If-None-Match": etag})
    assert again.status_code == 304 and not again.data
    # Every other API answer stays out of caches.
    assert client.get("/api/v1/me").headers["Cache-Control"] == "no-store"


def test_the_document_is_valid_openapi_3_1():
    document = json.loads(DOCUMENT.read_text())
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in OpenAPIV31SpecValidator(document).iter_errors()
    ]
    assert not errors, "\n".join(errors)
    assert document["openapi"].startswith("3.1.")


def _flask_path(rule: str) -> str:
    """`/api/v1/jobs/<job_id>` (or `<string:job_id>`) as OpenAPI writes it."""
    return re.sub(r"<(?:[a-z]+:)?([A-Za-z_]+)>", r"{\1}", rule)


def test_every_api_route_is_documented_and_every_documented_route_exists(app):
    routes = {
        (_flask_path(rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/")
        for method in rule.methods - IGNORED_METHODS
    }
    paths = json.loads(DOCUMENT.read_text())["paths"]
    documented = {
        (path, method) for path, item in paths.items() for method in item.keys() & METHODS
    }
    assert routes - documented == set(), "routes missing from docs/openapi.json"
    assert documented - routes == set(), "docs/openapi.json describes routes the app lacks"
