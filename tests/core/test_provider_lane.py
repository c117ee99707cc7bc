"""The provider lane (``pipeline.ProviderLane``) answers exactly what Flask's own request cycle
answers, runs the app's hooks as Flask does, and steps aside whenever Flask would run more."""
import json

import pytest
from flask import Flask, g, request, signals

from simulator import create_app

KEY = "sk_sbox_" + "a" * 27
AUTH = {"Authorization": f"Bearer {KEY}", "Host": "127.0.0.1:8080"}
CARD = {"type": "card", "number": "4242424242424242", "expiry_month": 12, "expiry_year": 2030, "cvv": "100"}
CHALLENGE = {**CARD, "number": "4010061700000021"}


def apps():
    """The same seeded sandbox twice: one served by the lane, one by Flask's own cycle."""
    config = {"seed": 7, "webhooks": "manual", "clock": {"start": "2026-01-01T00:00:00Z"}}
    lane, flask = create_app(config), create_app(config)
    flask.provider_lane = None
    return lane, flask


def script(client):
    """Every kind of answer a provider path gives: JSON, HTML, errors raised at each stage."""
    seen = []

    def call(method, path, **kw):
        kw.setdefault("headers", AUTH)
        resp = client.open(path, method=method, **kw)
        seen.append((method, path, resp.status, sorted(resp.headers.items()), resp.get_data()))
        return resp

    cit = call("POST", "/checkout/payments", json={"source": CARD, "amount": 1000, "currency": "EUR",
                                                   "reference": "lane-1", "payment_type": "Recurring"}).get_json()
    call("GET", f"/checkout/payments/{cit['id']}")
    call("HEAD", f"/checkout/payments/{cit['id']}")
    call("GET", "/checkout/payments?reference=lane-1&limit=5")
    call("GET", "/checkout/payments?limit=0")                      # validation refusal
    call("GET", "/checkout/payments/pay_unknown")                  # the provider's 404
    call("DELETE", f"/checkout/payments/{cit['id']}")              # 405 below the mount
    call("GET", "/checkout/no/such/path")                          # 404 below the mount
    call("GET", "/checkout/payments", headers={"Host": "127.0.0.1:8080"})   # no credentials: 401
    call("POST", "/checkout/payments", data=b"{not json", content_type="application/json")
    call("POST", "/checkout/payments", data=b"x" * (1024 * 1024 + 10), content_type="application/json")
    call("OPTIONS", "/checkout/payments")
    pending = call("POST", "/checkout/payments", json={"source": CHALLENGE, "amount": 1500, "currency": "EUR",
                                                       "3ds": {"enabled": True}}).get_json()
    page = pending["_links"]["redirect"]["href"].replace("http://127.0.0.1:8080", "")
    call("GET", page, headers={"Host": "127.0.0.1:8080"})          # an HTML page (template, url_for)
    call("POST", page, headers={"Host": "127.0.0.1:8080"}, data={"password": "wrong"})
    pending = call("POST", "/checkout/payments", json={"source": CHALLENGE, "amount": 1600, "currency": "EUR",
                                                       "3ds": {"enabled": True},
                                                       "success_url": "https://shop.example/ok"}).get_json()
    page = pending["_links"]["redirect"]["href"].replace("http://127.0.0.1:8080", "")
    call("POST", page, headers={"Host": "127.0.0.1:8080"}, data={"password": "Checkout1!"})   # a redirect
    customer = call("POST", "/checkout/customers", json={"email": "lane@example.com"}).get_json()
    call("DELETE", f"/checkout/customers/{customer['id']}")       # 204: no body
    short = call("POST", "/checkout/payments", data=b'{"amount": 1000}', content_type="application/json",
                 environ_overrides={"CONTENT_LENGTH": "40"})        # a body shorter than declared
    assert short.status_code == 422 and short.get_json()["error_type"] == "request_malformed"
    odd = call("POST", "/checkout/payments", data=b"{}", content_type="application/json",
               environ_overrides={"CONTENT_LENGTH": "\u00b2"})   # a digit int() refuses: no 500
    assert odd.status_code == 422
    call("GET", "/_sandbox/health")                                # not a provider: Flask's cycle
    return seen


def test_lane_answers_byte_for_byte_what_flask_answers():
    lane, flask = apps()
    ours, theirs = script(lane.test_client()), script(flask.test_client())
    assert len(ours) == len(theirs) == 22
    for mine, reference in zip(ours, theirs):
        assert mine == reference
    statuses = [status for _, _, status, _, _ in ours]
    assert statuses[:12] == ["201 CREATED", "200 OK", "200 OK", "200 OK", "422 UNPROCESSABLE ENTITY",
                             "404 NOT FOUND", "405 METHOD NOT ALLOWED", "404 NOT FOUND", "401 UNAUTHORIZED",
                             "422 UNPROCESSABLE ENTITY", "413 REQUEST ENTITY TOO LARGE", "200 OK"]
    assert ours[13][3] and b"<form" in ours[13][4]
    assert ours[16][2] == "302 FOUND" and dict(ours[16][3])["Location"].startswith("https://shop.example/ok?")
    assert ours[18][2] == "204 NO CONTENT" and ours[18][4] == b""
    journal = [app.extensions["sandbox"].journal.entries() for app in (lane, flask)]
    assert journal[0] == journal[1] and len(journal[0]) == 21   # every provider request, health not


@pytest.mark.parametrize("broken", ["raises", "returns nothing"])
def test_an_unexpected_error_is_the_providers_500_on_both_paths(broken):
    answers = []
    for app in apps():
        def view(payment_id):
            if broken == "raises":
                raise RuntimeError("boom")
        app.view_functions["checkout.get_payment"] = view
        resp = app.test_client().get("/checkout/payments/pay_x", headers=AUTH)
        answers.append((resp.status_code, resp.get_data()))
    assert answers[0] == answers[1]
    assert answers[0][0] == 500 and json.loads(answers[0][1])["error_type"]


def test_provider_requests_skip_flasks_dispatch_and_the_rest_do_not():
    app = create_app({"webhooks": "manual"})
    dispatched = []
    full = app.full_dispatch_request
    app.full_dispatch_request = lambda: dispatched.append(request.path) or full()
    client = app.test_client()
    assert client.get("/checkout/payments/pay_x", headers=AUTH).status_code == 404
    assert client.get("/_sandbox/health").status_code == 200
    assert dispatched == ["/_sandbox/health"]


def test_app_hooks_run_on_provider_requests_in_flasks_order():
    app = create_app({"webhooks": "manual"})
    calls = []

    @app.before_request
    def before():
        g.marker = "set before"
        calls.append("before")

    @app.after_request
    def after(response):
        # registered after the pipeline's own: Flask runs it first, before the journal sees the answer
        response.headers["X-Marker"] = g.marker
        calls.append("after")
        return response

    @app.teardown_request
    def teardown(exc):
        calls.append(f"teardown {type(exc).__name__ if exc else None}")

    resp = app.test_client().get("/checkout/payments/pay_x", headers=AUTH)
    assert resp.status_code == 404 and resp.headers["X-Marker"] == "set before"
    assert calls == ["before", "after", "teardown None"]
    entry = app.extensions["sandbox"].journal.entries()[-1]
    assert entry["status"] == 404


@pytest.mark.parametrize("extra", ["blueprint hook", "signal receiver"])
def test_what_the_lane_does_not_run_sends_the_request_through_flask(extra):
    app = create_app({"webhooks": "manual"})
    seen = []

    def on_started(sender, **kw):
        seen.append("signal")

    if extra == "blueprint hook":
        app.before_request_funcs.setdefault("checkout", []).append(lambda: seen.append("hook"))
    else:
        signals.request_started.connect(on_started, app)
    try:
        resp = app.test_client().get("/checkout/payments/pay_x", headers=AUTH)
    finally:
        signals.request_started.disconnect(on_started, app)
    assert resp.status_code == 404
    assert seen == (["hook"] if extra == "blueprint hook" else ["signal"])


def test_a_bare_flask_app_keeps_flasks_cycle():
    # the lane belongs to the sandbox's app class, not to Flask
    assert not hasattr(Flask, "provider_lane")


def test_a_remembered_route_hands_each_request_its_own_arguments():
    app = create_app({"webhooks": "manual"})
    seen = []

    @app.before_request
    def tamper():
        seen.append(dict(request.view_args))
        request.view_args["payment_id"] = "pay_tampered"

    client = app.test_client()
    answers = [client.get("/checkout/payments/pay_a", headers=AUTH) for _ in range(2)]
    assert seen == [{"payment_id": "pay_a"}, {"payment_id": "pay_a"}]
    assert [a.status_code for a in answers] == [404, 404]
