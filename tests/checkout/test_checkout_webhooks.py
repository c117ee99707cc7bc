"""Signed webhooks, the documented retry schedule, and every attempt visible in /_sandbox/webhooks."""
import hashlib
import hmac
import json
from datetime import datetime, timedelta

from checkout_sdk.payments.payments import CaptureRequest

from cko_helpers import MANDATE_3DS, card_source, payment_request, sdk

SCHEDULE = [timedelta(minutes=m) for m in (5, 10, 15, 30, 60, 240, 720, 720)]


def verify(req, key="cko-signing-key"):
    expected = hmac.new(key.encode(), req["body"], hashlib.sha256).hexdigest()
    return hmac.compare_digest(req["headers"]["Cko-Signature"], expected)


def test_events_are_signed_and_mirror_the_payment(cko_server, receiver):
    api = sdk(cko_server.url)
    pay = api.payments.request_payment(payment_request(card_source(), three_ds=MANDATE_3DS))
    cko_server.hosted("checkout", pay.id)
    cko_server.flush()
    received = receiver.wait_for(3)
    assert all(verify(r) for r in received)
    bodies = [json.loads(r["body"]) for r in received]
    assert [b["type"] for b in bodies] == ["payment_pending", "payment_approved", "payment_captured"]
    approved = bodies[1]
    assert approved["id"].startswith("evt_") and approved["version"]
    assert approved["data"]["id"] == pay.id
    assert approved["data"]["source"]["last_4"] == "4242"
    assert approved["data"]["source"]["scheme"] == "Visa"   # as the payment's source, the guide's casing
    assert approved["data"]["response_code"] == "10000"
    assert approved["_links"]["subject"]["href"].endswith(f"/workflows/events/subject/{pay.id}")
    assert bodies[2]["data"]["balances"]["total_captured"] == 5000


def test_tampered_body_fails_verification(cko_server, receiver):
    api = sdk(cko_server.url)
    api.payments.request_payment(payment_request(card_source()))
    cko_server.flush()
    req = receiver.wait_for(1)[0]
    tampered = dict(req, body=req["body"].replace(b"5000", b"9000"))
    assert verify(req) and not verify(tampered)
    assert not verify(req, key="another-key")


def test_failing_receiver_gets_exactly_the_documented_schedule_then_dead(cko_server, receiver):
    receiver.status = 500
    api = sdk(cko_server.url)
    pay = api.payments.request_payment(payment_request(card_source(), payment_type="Regular", capture=False))
    cko_server.flush()
    cko_server.advance("P3D")
    deliveries = cko_server.webhooks(provider="checkout")
    assert len(deliveries) == 1
    d = deliveries[0]
    assert d["event_type"] == "payment_approved" and d["subject"] == pay.id
    assert d["status"] == "dead" and d["next_attempt_at"] is None
    times = [datetime.fromisoformat(a["at"].replace("Z", "+00:00")) for a in d["attempts"]]
    assert len(times) == 9
    assert [b - a for a, b in zip(times, times[1:])] == SCHEDULE
    assert all(a["status"] == 500 for a in d["attempts"])
    assert len(receiver.requests) == 9   # every attempt reached the receiver


def test_receiver_recovering_midway_stops_retries(cko_server, receiver):
    receiver.status = 503
    api = sdk(cko_server.url)
    api.payments.request_payment(payment_request(card_source(), payment_type="Regular", capture=False))
    cko_server.flush()
    cko_server.advance("PT16M")   # attempts at 0, +5m, +15m
    receiver.status = 200
    cko_server.advance("P1D")
    d = cko_server.webhooks()[0]
    assert [a["status"] for a in d["attempts"]] == [503, 503, 503, 200]
    assert d["status"] == "delivered"


def test_failed_status_while_retries_remain(cko_server, receiver):
    receiver.status = 500
    sdk(cko_server.url).payments.request_payment(payment_request(card_source(), capture=False))
    cko_server.flush()
    d = cko_server.webhooks()[0]
    assert d["status"] == "failed" and d["next_attempt_at"] == "2026-01-01T00:05:00.000Z"


def test_auto_mode_delivers_in_the_background(receiver):
    from simulator.testing import SandboxServer
    with SandboxServer({"webhooks": "auto", "providers": {"checkout": {
            "webhook_url": receiver.url, "webhook_signing_key": "k"}}}) as srv:
        sdk(srv.url).payments.request_payment(payment_request(card_source(), capture=False))
        got = receiver.wait_for(1)
        assert verify(got[0], "k")


def test_no_webhook_url_no_delivery(server, api):
    api.payments.request_payment(payment_request(card_source()))
    assert server.webhooks() == []


def test_expiry_after_a_non_final_capture_sends_no_payment_expired(cko_server, receiver):
    api = sdk(cko_server.url)
    partly = api.payments.request_payment(payment_request(card_source(), amount=1000, capture=False))
    cap = CaptureRequest()
    cap.amount, cap.capture_type = 100, "NonFinal"
    api.payments.capture_payment(partly.id, cap)
    untouched = api.payments.request_payment(payment_request(card_source(), amount=1000, capture=False))
    cko_server.advance("P7DT1M")
    cko_server.flush()
    bodies = [json.loads(r["body"]) for r in receiver.wait_for(4)]
    assert cko_server.flush() == [] and len(receiver.requests) == 4
    assert sorted((b["type"], b["data"]["id"]) for b in bodies) == sorted([   # two lanes: any order
        ("payment_approved", partly.id), ("payment_captured", partly.id),
        ("payment_approved", untouched.id), ("payment_expired", untouched.id)])   # the rest's release sends nothing


def test_configured_webhook_headers_go_with_every_delivery_signed_or_not(server, receiver):
    # README: webhook_headers are "sent with every delivery"; they once rode on the signature and
    # went missing when no signing key was configured
    resp = server.admin("PUT", "/config", json={"providers": {"checkout": {
        "webhook_url": receiver.url + "/cko", "webhook_headers": {"Authorization": "my-token"}}}})
    assert resp.status_code == 200, resp.text
    sdk(server.url).payments.request_payment(payment_request(card_source()))
    server.flush()
    received = receiver.wait_for(2)
    assert [r["headers"].get("Authorization") for r in received] == ["my-token"] * 2
    assert not any("Cko-Signature" in r["headers"] for r in received)


def test_a_webhook_header_that_would_split_the_request_is_refused_at_configuration(server):
    for headers in ({"X-Token": "abc\r\nX-Injected: 1"}, {"X-Token": "abc\n"}, {"X Token": "abc"}, {"X-Token": " abc"}):
        resp = server.admin("PUT", "/config", json={"providers": {"checkout": {"webhook_headers": headers}}})
        assert resp.status_code == 400 and "webhook_headers" in resp.text, (headers, resp.text)


def test_an_event_larger_than_the_signing_piece_is_signed_over_its_whole_body(cko_server, receiver):
    # the signature is computed a piece under 2 KiB at a time (core/signing.py): an event several
    # pieces long still verifies against the standard HMAC of the body as received
    api = sdk(cko_server.url)
    metadata = {f"field_{n}": "v" * 90 for n in range(60)}
    api.payments.request_payment(payment_request(card_source(), metadata=metadata))
    cko_server.flush()
    received = receiver.wait_for(2)
    assert all(len(r["body"]) > 3 * 2047 for r in received)
    assert all(verify(r) for r in received)
    assert json.loads(received[0]["body"])["data"]["metadata"] == metadata
