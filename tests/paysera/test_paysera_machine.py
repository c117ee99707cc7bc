"""The payment request state machine: authorize, capture, cancel, invalid_state (409)."""
from __future__ import annotations

from simulator.providers.paysera import Paysera
from paysera_helpers import client, first_payment, hosted_token, recurring_payment  # noqa: F401


def test_transition_table_covers_exactly_the_four_statuses():
    (table,) = Paysera.state_tables()
    assert set(table.states) == {"new", "authorized", "captured", "canceled"}


def test_token_charge_is_captured_at_once(server, client, receiver):
    _, token = hosted_token(server, client, receiver)
    pr = client.create(**recurring_payment(receiver.url + "/cb")).json()
    body = client.authorize(pr["id"], token).json()
    assert body["status"] == "captured" and "captured_at" in body
    again = client.authorize(pr["id"], token)
    assert again.status_code == 409 and again.json()["error"] == "invalid_state"
    for resp in (client.capture(pr["id"]), client.cancel(pr["id"])):
        assert resp.status_code == 409
        assert resp.json()["error"] == "invalid_state"
        assert resp.json()["error_description"]
    assert client.get(pr["id"]).json()["status"] == "captured"


def test_cancel_new_request_and_its_notification(server, client, receiver):
    pr = client.create(**recurring_payment(receiver.url + "/cb")).json()
    canceled = client.cancel(pr["id"])
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    server.flush()
    note = client.notifications().json()["items"][0]
    assert note["event"] == "payment_request.canceled" and note["data"]["payment_request"]["status"] == "canceled"
    assert client.cancel(pr["id"]).status_code == 409
    assert client.capture(pr["id"]).status_code == 409
    assert server.hosted("paysera", pr["id"], outcome="approve").status_code == 409


def test_capture_of_a_new_request_is_invalid_state(server, client, receiver):
    pr = client.create(**recurring_payment(receiver.url + "/cb")).json()
    resp = client.capture(pr["id"])
    assert resp.status_code == 409 and resp.json()["error"] == "invalid_state"


def test_two_step_mode_authorize_then_partial_capture(server, client, receiver):
    server.admin("PUT", "/config", json={"providers": {"paysera": {"two_step": True}}}).raise_for_status()
    _, token = hosted_token(server, client, receiver)
    pr = client.create(**recurring_payment(receiver.url + "/cb", amount="25.00")).json()
    auth = client.authorize(pr["id"], token).json()
    assert auth["status"] == "authorized" and "price_paid" not in auth
    too_much = client.capture(pr["id"], {"capture_amount": {"amount": "25.01", "currency": "EUR"}})
    assert too_much.status_code == 400 and "capture_amount.amount" in too_much.json()["error_properties"]
    wrong_ccy = client.capture(pr["id"], {"capture_amount": {"amount": "5.00", "currency": "USD"}})
    assert wrong_ccy.status_code == 400
    captured = client.capture(pr["id"], {"capture_amount": {"amount": "20.00", "currency": "EUR"}}).json()
    assert captured["status"] == "captured" and captured["price_paid"] == {"amount": "20.00", "currency": "EUR"}
    server.flush()
    events = [n["event"] for n in client.notifications(order_direction="asc").json()["items"]]
    assert events[-2:] == ["payment_request.authorized", "payment_request.captured"]


def test_two_step_authorized_request_can_be_canceled(server, client, receiver):
    server.admin("PUT", "/config", json={"providers": {"paysera": {"two_step": True}}}).raise_for_status()
    _, token = hosted_token(server, client, receiver)
    pr = client.create(**recurring_payment(receiver.url + "/cb")).json()
    client.authorize(pr["id"], token)
    assert client.cancel(pr["id"]).json()["status"] == "canceled"


def test_valid_until_expiry_cancels_on_the_virtual_clock(server, client, receiver):
    # clock starts 2026-01-01T00:00:00Z = 1767225600
    pr = client.create(**first_payment(receiver.url + "/cb", valid_until=1767225600 + 3600)).json()
    assert pr["valid_until"] == 1767225600 + 3600
    server.advance("PT59M")
    assert client.get(pr["id"]).json()["status"] == "new"
    server.advance("PT2M")
    assert client.get(pr["id"]).json()["status"] == "canceled"
    assert server.hosted("paysera", pr["id"], outcome="approve").status_code == 409
    past = client.create(**first_payment(receiver.url + "/cb", valid_until=1000))
    assert past.status_code == 400 and "valid_until" in past.json()["error_properties"]


def test_unique_identifier_replaces_unpaid_and_refuses_paid(server, client, receiver):
    first = client.create(**first_payment(receiver.url + "/cb", unique_identifier="u-1")).json()
    second = client.create(**first_payment(receiver.url + "/cb", unique_identifier="u-1")).json()
    assert client.get(first["id"]).json()["status"] == "canceled"
    assert second["status"] == "new"
    server.hosted("paysera", second["id"], outcome="approve")
    third = client.create(**first_payment(receiver.url + "/cb", unique_identifier="u-1"))
    assert third.status_code == 409 and third.json()["error"] == "payment_request_not_unique"


def test_concurrent_authorizations_charge_once(server, client, receiver):
    from concurrent.futures import ThreadPoolExecutor
    from paysera_helpers import PayseraClient
    _, token = hosted_token(server, client, receiver)
    pr = client.create(**recurring_payment(receiver.url + "/cb")).json()
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: PayseraClient(server.url).authorize(pr["id"], token).status_code, range(8)))
    assert sorted(codes) == [200] + [409] * 7
    server.flush()
    captured = [n for n in client.notifications().json()["items"] if n["event"] == "payment_request.captured"
                and n["data"]["payment_request"]["id"] == pr["id"]]
    assert len(captured) == 1
