"""The payment request state machine: authorize, capture, cancel, invalid_state (409)."""
from __future__ import annotations

import pytest

from simulator.providers.paysera import Paysera
from paysera_helpers import DEFAULT_ID, client, first_payment, hosted_token, recurring_payment  # noqa: F401


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


FAR_FUTURE = [253402300800, 10 ** 12, 2 ** 63]   # 10000-01-01, year 33658, past a 64-bit time_t


@pytest.mark.parametrize("valid_until", FAR_FUTURE)
def test_valid_until_past_the_clock_range_is_refused_and_nothing_is_written(server, client, receiver, valid_until):
    old = client.create(**first_payment(receiver.url + "/cb", unique_identifier="u-far")).json()
    resp = client.create(**first_payment(receiver.url + "/cb", unique_identifier="u-far", order_id="FAR",
                                         valid_until=valid_until))
    assert resp.status_code == 400, resp.text
    err = resp.json()
    assert err["error"] == "invalid_parameters"
    assert list(err["error_properties"]) == ["valid_until"]
    assert err["error_description"] == err["error_properties"]["valid_until"][0] == \
        "This value should be between 1 and 253402300799."
    # nothing created, the predecessor not replaced, no cancel notified
    items = client.request("GET", "/checkout/rest/v1/payment-requests").json()["items"]
    assert [(i["id"], i["status"]) for i in items] == [(old["id"], "new")]
    assert server.admin("GET", "/objects", params={"provider": "paysera", "reference": "FAR"}).json()["objects"] == []
    server.flush()
    assert client.notifications().json()["items"] == [] and receiver.requests == []


def test_valid_until_at_the_last_second_of_year_9999_is_accepted(server, client, receiver):
    pr = client.create(**first_payment(receiver.url + "/cb", valid_until=253402300799))
    assert pr.status_code == 200, pr.text
    assert pr.json()["valid_until"] == 253402300799 and pr.json()["status"] == "new"


def test_create_checks_everything_before_its_first_write(server, client, receiver):
    # Even with a value the schema let through, the machine fails before it replaces the
    # predecessor or stores the new request: no half-written create.
    from simulator.providers.paysera import schemas
    old = client.create(**first_payment(receiver.url + "/cb", unique_identifier="u-order")).json()
    data = schemas.PaymentRequestCreate().load(first_payment(receiver.url + "/cb", unique_identifier="u-order"))
    data["valid_until"] = 10 ** 12
    machine = server.sandbox.providers["paysera"].machine
    with pytest.raises((OverflowError, ValueError, OSError)):
        machine.create(DEFAULT_ID, data, server.url + "/paysera")
    items = client.request("GET", "/checkout/rest/v1/payment-requests").json()["items"]
    assert [(i["id"], i["status"]) for i in items] == [(old["id"], "new")]
    server.flush()
    assert client.notifications().json()["items"] == []
