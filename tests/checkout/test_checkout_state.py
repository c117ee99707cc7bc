"""Checkout.com authorizations and their expiry timer in a state file."""
import sqlite3

import requests

from simulator.testing import DEFAULT_START, SandboxServer, ServerProcess, free_port

from cko_helpers import card_source, payment_request, sdk

CONFIG = {"seed": 1, "clock": {"start": DEFAULT_START}}


def _expiry_rows(state: str) -> set[str]:
    with sqlite3.connect(state) as db:
        return {key for (key,) in db.execute("SELECT key FROM records WHERE space = 'timers'")
                if key.startswith("checkout:expire:")}


def test_only_an_authorization_left_uncaptured_gets_an_expiry_timer_and_it_survives_a_restart(tmp_path):
    state = str(tmp_path / "state.db")
    with SandboxServer(CONFIG, state_path=state) as srv:
        written = []
        write = srv.sandbox.state.write
        srv.sandbox.state.write = lambda row, *a, **k: (written.append(row), write(row, *a, **k))[1]
        api = sdk(srv.url)
        captured = api.payments.request_payment(payment_request(card_source()))
        held = api.payments.request_payment(payment_request(card_source(), capture=False))
        assert (captured.status, held.status) == ("Authorized", "Authorized")   # the 201 is taken before the capture
        assert api.payments.get_payment_details(captured.id).status == "Captured"
        # the capture at the same instant would cancel it: no row is written for it, not even a deletion
        timer_rows = {row[2] for row in written if row[:2] == ("r", "timers")}
        assert timer_rows == {f"checkout:expire:{held.id}"}
    assert _expiry_rows(state) == {f"checkout:expire:{held.id}"}
    with SandboxServer(CONFIG, state_path=state) as srv:
        api = sdk(srv.url)
        srv.advance("P7DT1S")   # the timer was read back from the file: nothing else would expire it
        assert api.payments.get_payment_details(held.id).status == "Expired"
        assert api.payments.get_payment_details(captured.id).status == "Captured"
    assert _expiry_rows(state) == set()


def test_an_uncaptured_authorization_answered_201_still_expires_after_a_kill_9(tmp_path):
    state = str(tmp_path / "state.db")
    args = ("--seed", "1", "--state", state)
    port = free_port()   # one port throughout: the payment's links carry it
    srv = ServerProcess(*args, port=port).wait_ready()
    try:
        held = sdk(srv.url).payments.request_payment(payment_request(card_source(), capture=False))
        assert held.status == "Authorized"
    finally:
        srv.kill9()
    srv = ServerProcess(*args, port=port).wait_ready()
    try:
        api = sdk(srv.url)
        assert api.payments.get_payment_details(held.id).status == "Authorized"
        advanced = requests.post(f"{srv.url}/_sandbox/clock", json={"advance": "P7DT1S"}, timeout=30)
        assert advanced.status_code == 200, advanced.text
        assert api.payments.get_payment_details(held.id).status == "Expired"
    finally:
        srv.stop()


def test_the_card_lookups_find_what_they_found_before_a_kill_9(tmp_path):
    # the indexes that find a series' first payment and a customer's stored card are rebuilt from
    # the state file: after a SIGKILL a merchant-initiated payment by the card alone still finds its
    # series (3-D Secure without the mandate: soft-declined 20154), and the customer's card is reused
    from checkout_sdk.payments.payments import PaymentCustomerRequest

    state = str(tmp_path / "state.db")
    args = ("--seed", "1", "--state", state)
    port = free_port()
    customer = PaymentCustomerRequest()
    customer.email = "ada@example.com"
    srv = ServerProcess(*args, port=port).wait_ready()
    try:
        api = sdk(srv.url)
        cit = api.payments.request_payment(payment_request(card_source(), three_ds={"enabled": True},
                                                           customer=customer))
        requests.post(f"{srv.url}/_sandbox/hosted/checkout/{cit.id}", json={"outcome": "approve"},
                      timeout=10).raise_for_status()
        stored = api.payments.get_payment_details(cit.id).source.id
    finally:
        srv.kill9()
    srv = ServerProcess(*args, port=port).wait_ready()
    try:
        api = sdk(srv.url)
        mit = api.payments.request_payment(payment_request(card_source(), merchant_initiated=True))
        assert mit.http_metadata.status_code == 201
        assert mit.status == "Declined" and mit.response_code == "20154"
        again = api.payments.request_payment(payment_request(card_source(), customer=customer))
        assert again.approved and again.source.id == stored
    finally:
        srv.stop()
