"""Capture, void, refunds, get and list (cursor pagination and filters), idempotency and the
``prefer`` response shapes, through the official SDK."""
import threading

import pytest
import requests
from gr4vy import auth, errors, models
from gr4vy_helpers import CARD, client, new_key

# every response of this flow is checked against the provider's OpenAPI document
pytestmark = [pytest.mark.xdist_group("contract-gr4vy"), pytest.mark.usefixtures("contract_checked")]


def authorize(sdk, amount=2000, **extra):
    return sdk.transactions.create(amount=amount, currency="GBP", country="GB", payment_method=CARD, **extra)


def test_authorize_then_full_capture_returns_the_transaction_by_default(sdk):
    tx = authorize(sdk)
    assert tx.status == "authorization_succeeded" and tx.authorized_amount == 2000 and tx.captured_amount == 0
    captured = sdk.transactions.capture(transaction_id=tx.id)
    assert isinstance(captured, models.Transaction)
    assert captured.status == "capture_succeeded" and captured.captured_amount == 2000
    assert captured.captured_at is not None


def test_partial_capture_with_the_capture_wrapper(sdk):
    tx = authorize(sdk)
    wrapper = sdk.transactions.capture(transaction_id=tx.id, amount=1200, prefer=["resource=transaction-capture"])
    assert isinstance(wrapper, models.TransactionCapture)
    assert wrapper.status == "succeeded" and wrapper.code is None
    assert wrapper.transaction.status == "capture_succeeded"
    assert wrapper.transaction.captured_amount == 1200 and wrapper.transaction.authorized_amount == 2000
    with pytest.raises(errors.Error400):   # already captured
        sdk.transactions.capture(transaction_id=tx.id)


def test_capture_more_than_authorized_is_refused(sdk):
    tx = authorize(sdk)
    with pytest.raises(errors.Error400) as exc:
        sdk.transactions.capture(transaction_id=tx.id, amount=2001)
    assert exc.value.data.details[0].pointer == "/amount"
    assert sdk.transactions.get(transaction_id=tx.id).status == "authorization_succeeded"


def test_zero_amount_authorization_can_be_neither_captured_nor_voided(sdk):
    zero = authorize(sdk, amount=0)
    assert zero.status == "authorization_succeeded" and zero.authorized_amount == 0
    refusals = {}
    for action, call in (("captured", lambda: sdk.transactions.capture(transaction_id=zero.id)),
                         ("captured", lambda: sdk.transactions.capture(transaction_id=zero.id,
                                                                       prefer=["resource=transaction-capture"])),
                         ("voided", lambda: sdk.transactions.void(transaction_id=zero.id))):
        with pytest.raises(errors.Error400) as exc:
            call()
        assert exc.value.data.message == f"A zero-amount authorization cannot be {action}"
        refusals[action] = (exc.value.data.code, exc.value.data.status, exc.value.data.details)
    assert refusals["captured"] == refusals["voided"]   # one envelope for both refusals
    after = sdk.transactions.get(transaction_id=zero.id)
    assert after.status == "authorization_succeeded" and after.intent_outcome == "succeeded"
    assert (after.captured_amount, after.captured_at, after.updated_at) == (0, None, zero.updated_at)


def test_void_with_and_without_the_void_wrapper(sdk):
    tx = authorize(sdk)
    wrapper = sdk.transactions.void(transaction_id=tx.id, prefer=["resource=transaction-void"])
    assert isinstance(wrapper, models.TransactionVoid)
    assert wrapper.status == "succeeded" and wrapper.transaction.status == "authorization_voided"
    other = authorize(sdk)
    plain = sdk.transactions.void(transaction_id=other.id)
    assert isinstance(plain, models.Transaction) and plain.status == "authorization_voided"
    assert plain.voided_at is not None
    with pytest.raises(errors.Error400):   # cannot capture a voided authorization
        sdk.transactions.capture(transaction_id=other.id)


def test_void_after_capture_is_refused_and_refund_is_the_way(sdk):
    tx = authorize(sdk, intent="capture")
    assert tx.status == "capture_succeeded"
    with pytest.raises(errors.Error400) as exc:
        sdk.transactions.void(transaction_id=tx.id)
    assert "cannot be voided" in exc.value.data.message


def test_partial_then_full_refunds(sdk):
    tx = authorize(sdk, amount=5000, intent="capture", external_identifier="order-9")
    first = sdk.transactions.refunds.create(transaction_id=tx.id, amount=1500, reason="damaged")
    assert first.status == "succeeded" and first.amount == 1500 and first.currency == "GBP"
    assert first.transaction_id == tx.id and first.target_type == "payment-method"
    assert first.transaction_external_identifier == "order-9"
    assert sdk.transactions.get(transaction_id=tx.id).refunded_amount == 1500
    with pytest.raises(errors.Error400):   # more than what is left
        sdk.transactions.refunds.create(transaction_id=tx.id, amount=3501)
    rest = sdk.transactions.refunds.create(transaction_id=tx.id)   # no amount: the remainder
    assert rest.amount == 3500
    after = sdk.transactions.get(transaction_id=tx.id)
    assert after.refunded_amount == 5000 and after.status == "capture_succeeded"
    with pytest.raises(errors.Error400):
        sdk.transactions.refunds.create(transaction_id=tx.id, amount=1)
    refunds = sdk.transactions.refunds.list(transaction_id=tx.id)
    assert {r.id for r in refunds.items} == {first.id, rest.id}
    assert sdk.refunds.get(refund_id=first.id).amount == 1500
    assert sdk.transactions.refunds.get(transaction_id=tx.id, refund_id=rest.id).amount == 3500
    assert [t.id for t in sdk.transactions.list(has_refunds=True).result.items] == [tx.id]


def test_refund_all_and_refund_of_an_uncaptured_transaction(sdk):
    tx = authorize(sdk, amount=800, intent="capture")
    sdk.transactions.refunds.create(transaction_id=tx.id, amount=300)
    result = sdk.transactions.refunds.all.create(transaction_id=tx.id)
    assert [r.amount for r in result.items] == [500]
    assert sdk.transactions.refunds.all.create(transaction_id=tx.id).items == []
    uncaptured = authorize(sdk)
    with pytest.raises(errors.Error400):
        sdk.transactions.refunds.create(transaction_id=uncaptured.id, amount=100)


def test_get_and_unknown_ids(sdk):
    tx = authorize(sdk)
    got = sdk.transactions.get(transaction_id=tx.id)
    assert got.id == tx.id and got.reconciliation_id == tx.reconciliation_id and got.TYPE == "transaction"
    for call in (lambda: sdk.transactions.get(transaction_id="00000000-0000-4000-8000-000000000000"),
                 lambda: sdk.transactions.capture(transaction_id="nope"),
                 lambda: sdk.transactions.void(transaction_id="nope"),
                 lambda: sdk.transactions.refunds.create(transaction_id="nope"),
                 lambda: sdk.refunds.get(refund_id="nope")):
        with pytest.raises(errors.Error404) as exc:
            call()
        assert exc.value.data.code == "not_found"


def test_list_pages_with_cursors(sdk):
    ids = [authorize(sdk, amount=100 + n).id for n in range(5)]
    first = sdk.transactions.list(limit=2)
    assert len(first.result.items) == 2 and first.result.next_cursor
    seen, page = [], first
    while page is not None:
        seen.extend(t.id for t in page.result.items)
        page = page.next()
    assert sorted(seen) == sorted(ids) and len(seen) == 5
    second = sdk.transactions.list(limit=2, cursor=first.result.next_cursor)
    assert second.result.previous_cursor
    back = sdk.transactions.list(limit=2, cursor=second.result.previous_cursor)
    assert [t.id for t in back.result.items] == [t.id for t in first.result.items]


def test_list_is_sorted_by_most_recently_updated(sdk):
    older = authorize(sdk)
    newer = authorize(sdk)
    assert [t.id for t in sdk.transactions.list().result.items][:2] == [newer.id, older.id]


def test_list_filters(server, sdk):
    a = authorize(sdk, amount=111, external_identifier="A", metadata={"plan": "gold"})
    b = authorize(sdk, amount=222, intent="capture", payment_source="recurring", merchant_initiated=False)
    c = authorize(sdk, amount=200011)   # declined
    lst = sdk.transactions.list
    assert [t.id for t in lst(status=["capture_succeeded"]).result.items] == [b.id]
    assert {t.id for t in lst(status=["capture_succeeded", "authorization_declined"]).result.items} == {b.id, c.id}
    assert [t.id for t in lst(external_identifier="A").result.items] == [a.id]
    assert [t.id for t in lst(amount_eq=222).result.items] == [b.id]
    assert {t.id for t in lst(amount_gte=200, amount_lte=300).result.items} == {b.id}
    assert [t.id for t in lst(payment_source=["recurring"]).result.items] == [b.id]
    assert [t.id for t in lst(error_code=["insufficient_funds"]).result.items] == [c.id]
    assert [t.id for t in lst(metadata=['{"plan": "gold"}']).result.items] == [a.id]
    assert [t.id for t in lst(id=a.id).result.items] == [a.id]
    assert len(lst(currency=["GBP"]).result.items) == 3 and lst(currency=["USD"]).result.items == []
    resp = requests.get(f"{server.url}/gr4vy/transactions", params={"limit": "0"},
                        headers={"authorization": "Bearer " + auth.get_token(new_key()[0])})
    assert resp.status_code == 400 and resp.json()["details"][0]["location"] == "query"


def test_idempotency_key_replays_the_first_response(sdk):
    first = authorize(sdk, idempotency_key="order-42")
    again = authorize(sdk, idempotency_key="order-42")
    assert again.id == first.id
    other = authorize(sdk, idempotency_key="order-43")
    assert other.id != first.id
    assert len(sdk.transactions.list().result.items) == 2


def test_idempotency_failed_validation_is_not_remembered(sdk):
    with pytest.raises(errors.Error400):
        sdk.transactions.create(amount=100, currency="usd", payment_method=CARD, idempotency_key="k1")
    ok = authorize(sdk, idempotency_key="k1")
    assert ok.status == "authorization_succeeded"


def test_concurrent_requests_with_one_idempotency_key_make_one_transaction(server, pem):
    results, failures = [], []

    def go():
        try:
            results.append(authorize(client(server, pem), idempotency_key="same").id)
        except errors.Error409 as exc:
            failures.append(exc.data.code)
    threads = [threading.Thread(target=go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1
    assert set(failures) <= {"concurrent_request"}
    assert len(client(server, pem).transactions.list().result.items) == 1


def test_idempotent_capture_captures_once(sdk):
    tx = authorize(sdk)
    one = sdk.transactions.capture(transaction_id=tx.id, amount=500, idempotency_key="cap-1")
    two = sdk.transactions.capture(transaction_id=tx.id, amount=500, idempotency_key="cap-1")
    assert one.captured_amount == two.captured_amount == 500


def test_concurrent_captures_capture_once(server, pem):
    tx = authorize(client(server, pem))
    outcomes = []

    def go():
        try:
            outcomes.append(client(server, pem).transactions.capture(transaction_id=tx.id).status)
        except errors.Error400:
            outcomes.append("refused")
    threads = [threading.Thread(target=go) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["capture_succeeded"] + ["refused"] * 5


def test_async_capture_settles_when_the_clock_moves(server, sdk):
    tx = authorize(sdk, intent="capture", async_capture=True)
    assert tx.status == "capture_pending" and tx.intent_outcome == "pending"
    server.advance("PT2M")
    settled = sdk.transactions.get(transaction_id=tx.id)
    assert settled.status == "capture_succeeded" and settled.captured_amount == 2000


def test_card_expiry_follows_the_virtual_clock(server, sdk):
    card = {**CARD, "expiration_date": "02/26"}
    ok = sdk.transactions.create(amount=100, currency="USD", payment_method=card)
    assert ok.status == "authorization_succeeded"
    server.advance("P60D")   # now March 2026: the card expired at the end of February
    late = sdk.transactions.create(amount=100, currency="USD", payment_method=card)
    assert late.status == "authorization_declined" and late.error_code == "expired_payment_method"
