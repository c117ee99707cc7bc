"""Each provider's OpenAPI 3.1 document: served without credentials, valid, complete, readable."""
import re
import warnings

import pytest
import requests
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from simulator.providers import REGISTERED
from simulator.providers.openapi import document, routed

from contract_check import ContractChecker

PROVIDERS = list(REGISTERED)


@pytest.fixture(scope="module")
def docs():
    from simulator.testing import SandboxServer
    with SandboxServer({"seed": 1}) as srv:
        yield srv, {name: requests.get(f"{srv.url}/{name}/openapi.json", timeout=30) for name in PROVIDERS}


@pytest.mark.parametrize("name", PROVIDERS)
def test_document_is_served_without_credentials_and_is_valid_openapi_3_1(docs, name):
    srv, served = docs
    resp = served[name]
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    doc = resp.json()
    assert doc["openapi"] == "3.1.0"
    validate(doc, cls=OpenAPIV31SpecValidator)
    assert doc["servers"][0]["url"] == f"{srv.url}/{name}"
    assert doc["components"]["securitySchemes"]
    assert doc["webhooks"], "every webhook event is documented"


@pytest.mark.parametrize("name", PROVIDERS)
def test_every_routed_path_and_method_is_in_the_document(docs, name):
    srv, served = docs
    doc = served[name].json()
    provider = srv.sandbox.providers[name]
    routes = routed(srv.app, provider)
    assert routes
    for endpoint, method, path in routes:
        assert method in doc["paths"].get(path, {}), f"{method.upper()} {path} ({endpoint}) missing"
        op = doc["paths"][path][method]
        view = srv.app.view_functions[f"{provider.blueprint.name}.{endpoint}"]
        if getattr(view, "_sandbox_no_auth", False):
            assert op["security"] == []
        else:
            assert op["security"], f"{path} needs credentials and says so"
            assert "401" in op["responses"]
    documented = {(m, p) for p, item in doc["paths"].items() for m in item if m in ("get", "post", "put", "patch", "delete")}
    assert documented == {(m, p) for _, m, p in routes}, "nothing documented that is not routed"


@pytest.mark.parametrize("name", PROVIDERS)
def test_generation_is_warning_free_and_repeatable(name):
    from simulator import create_app
    app = create_app({})
    provider = app.extensions["sandbox"].providers[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # e.g. two schemas resolving to one component name
        with app.test_request_context():
            first = document(app, provider, "http://127.0.0.1/x")
            second = document(app, provider, "http://127.0.0.1/x")
    assert first == second


@pytest.mark.parametrize("name", PROVIDERS)
def test_readable_page_lists_every_operation_and_loads_nothing_from_outside(docs, name):
    srv, served = docs
    doc = served[name].json()
    page = requests.get(f"{srv.url}/_sandbox/openapi/{name}", timeout=30)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    html = page.text
    for item in doc["paths"].values():
        for op in item.values():
            assert f'id="op-{op["operationId"]}"' in html
    for schema in doc["components"]["schemas"]:
        assert f'id="schema-{schema}"' in html
    assert f'href="/{name}/openapi.json"' in html
    assert not re.search(r'<(script|link|img)\b', html), "offline: no scripts, stylesheets or images"


def test_unknown_provider_page_is_404(docs):
    srv, _ = docs
    assert requests.get(f"{srv.url}/_sandbox/openapi/nope", timeout=30).status_code == 404


def test_the_checker_reports_drift(docs):
    """The response check used over the test suite fails on an undocumented field or status."""
    srv, _ = docs
    from flask import Response
    app = srv.app
    provider = srv.sandbox.providers["checkout"]
    checker = ContractChecker()
    with app.test_request_context("/checkout/customers/cus_x", method="GET"):
        from flask import request
        request.url_rule = app.url_map.bind("x").match("/checkout/customers/cus_x", method="GET", return_rule=True)[0]
        good = Response('{"id": "cus_1", "email": "a@b.c", "metadata": {}, "instruments": []}', 200,
                        mimetype="application/json")
        checker.observe(app, provider, request, good, False)
        assert checker.problems == []
        checker.observe(app, provider, request, Response('{"id": "cus_1", "email": "a@b.c", "metadata": {}, '
                                                         '"instruments": [], "surprise": 1}', 200,
                                                         mimetype="application/json"), False)
        checker.observe(app, provider, request, Response("", 418), False)
    assert any("surprise" in p for p in checker.problems)
    assert any("418" in p and "not in the document" in p for p in checker.problems)


@pytest.mark.parametrize("name", PROVIDERS)
def test_a_write_refused_for_a_full_outbox_answers_as_documented(name):
    import signing
    from simulator.testing import SandboxServer
    providers, auth = signing.setup(name)
    checker = ContractChecker()
    with SandboxServer({"seed": 1, "providers": providers}) as srv:
        checker.install(srv.app)
        srv.sandbox.outbox.max_pending = 0
        doc = requests.get(f"{srv.url}/{name}/openapi.json", timeout=30).json()
        path = next(p for p, item in doc["paths"].items() if "post" in item and "{" not in p
                    and item["post"]["security"])
        resp = signing.session(auth).post(f"{srv.url}/{name}{path}", json={}, timeout=30)
    assert resp.status_code == 503
    assert "503" in doc["paths"][path]["post"]["responses"]
    assert checker.problems == []
    assert sum(checker.checked.values()) == 1


def test_the_dashboard_links_every_providers_contract(server):
    page = requests.get(f"{server.url}/_sandbox/").text
    for name, provider in server.sandbox.providers.items():
        assert f'href="/_sandbox/openapi/{name}"' in page
        assert f'href="{provider.mount}/openapi.json"' in page
        assert requests.get(f"{server.url}{provider.mount}/openapi.json").json()["openapi"].startswith("3.1")
        assert requests.get(f"{server.url}/_sandbox/openapi/{name}").status_code == 200
