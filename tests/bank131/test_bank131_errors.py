"""Malformed input gets Bank 131's error envelope (never a 500); projects are isolated."""
import pytest
import requests

from bank131_client import Bank131Client, bank, first_payment, new_key, public_pem, token_charge  # noqa: F401


def _is_envelope(resp, code="invalid_request", status=400):
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["status"] == "error" and body["error"]["code"] == code and body["error"]["description"]
    return body["error"]["description"]


@pytest.mark.parametrize("raw", [b"{", b"not json", b"\xff\xfe", b'"a string"', b"[1, 2]", b"42", b"null"])
def test_malformed_bodies(bank, raw):
    _is_envelope(bank.client.raw("/api/v1/session/init/payment", raw))


@pytest.mark.parametrize("mutate,needle", [
    (lambda b: b.pop("amount_details"), "amount_details"),
    (lambda b: b["amount_details"].update(amount="100"), "amount"),
    (lambda b: b["amount_details"].update(amount=True), "amount"),
    (lambda b: b["amount_details"].update(amount=0), "amount"),
    (lambda b: b["amount_details"].update(amount=10.5), "amount"),
    (lambda b: b["amount_details"].update(currency="xyz"), "currency"),
    (lambda b: b["payment_details"]["card"]["bank_card"].update(number="4242"), "number"),
    (lambda b: b["payment_details"]["card"]["bank_card"].update(expiration_month="13"), "expiration_month"),
    (lambda b: b["payment_details"]["card"]["bank_card"].update(security_code=123), "security_code"),
    (lambda b: b["payment_details"].update(type="wallet"), "type"),
    (lambda b: b["payment_details"].pop("card"), "card"),
    (lambda b: b.update(payment_details="card"), "payment_details"),
    (lambda b: b.update(customer={}), "customer.reference"),
    (lambda b: b.pop("payment_details"), "payment_details"),
])
def test_validation_errors(bank, mutate, needle):
    body = first_payment()
    mutate(body)
    assert needle in _is_envelope(bank.client.init_payment(body))
    assert bank.server.sandbox.store.list("bank131", "session", "my-project") == []   # nothing half-written


FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


@pytest.mark.parametrize("field,value,needle", [
    # Python's \d, isdigit() and int() take these; "digits" in Bank 131's SDK means 0-9
    ("number", "4242424242424242".translate(FULLWIDTH), "number: must be 14 to 19 digits"),
    ("number", "4242424242424242".translate(ARABIC_INDIC), "number: must be 14 to 19 digits"),
    ("number", "4242\u00a04242\u00a04242\u00a04242", "number: must be 14 to 19 digits"),   # NBSP, not a space
    ("number", "4242424242424242\n", "number: must be 14 to 19 digits"),   # only spaces and dashes separate
    ("number", "4242\t4242\t4242\t4242", "number: must be 14 to 19 digits"),
    ("number", "\r\n4242424242424242", "number: must be 14 to 19 digits"),
    ("security_code", "１２３", "security_code: must be 3 or 4 digits"),
    ("security_code", "123\n", "security_code: must be 3 or 4 digits"),   # $ matches before a final newline
    ("expiration_month", "１２", "expiration_month: must be two digits 01-12"),
    ("expiration_month", "12\n", "expiration_month: must be two digits 01-12"),
    ("expiration_year", "３０", "expiration_year: must be two digits"),
    ("expiration_year", "2030\n", "expiration_year: must be two digits"),
])
def test_non_ascii_digits_are_not_digits(bank, field, value, needle):
    body = first_payment()
    body["payment_details"]["card"]["bank_card"][field] = value
    resp = bank.client.init_payment(body)
    assert needle in _is_envelope(resp)
    assert bank.server.sandbox.store.list("bank131", "session", "my-project") == []   # nothing half-written


def test_spaced_ascii_card_number_still_accepted(bank):
    body = first_payment()
    body["payment_details"]["card"]["bank_card"]["number"] = "4242 4242-4242 4242"
    payment = bank.client.init_payment(body).json()["session"]["acquiring_payments"][0]
    assert payment["payment_details"] == {"type": "card", "card": {"brand": "visa", "last4": "4242"}}


def test_non_ascii_digits_on_widget_and_hosted_action(bank):
    sid = bank.client.session("create", {"amount_details": {"amount": 100, "currency": "rub"},
                                         "customer": {"reference": "lucky"}}).json()["session"]["id"]
    public_token = bank.client.post("/api/v1/token", {"acquiring_widget": {"session_id": sid}}).json()["public_token"]
    url = f"{bank.server.url}/bank131/widget/{public_token}"
    form = {"number": "4242424242424242", "expiration_month": "12", "expiration_year": "30", "security_code": "123"}
    for field, value in [("number", "4242424242424242".translate(FULLWIDTH)),
                         ("number", "\u30004242424242424242\u3000"),   # str.strip() drops ideographic spaces
                         ("security_code", "١٢٣")]:
        page = requests.post(url, data={**form, field: value}, timeout=10)
        assert page.status_code == 400 and f"{field}: must be" in page.text
    for month in ("１２", "²", "١"):   # isdigit() is true for all three; int("²") raises
        resp = bank.server.hosted("bank131", sid, card={"exp_month": month})
        assert "expiration_month" in _is_envelope(resp)
    assert bank.client.status(sid).json()["session"]["status"] == "created"
    assert all(e["status"] < 500 for e in bank.server.journal(provider="bank131"))
    resp = bank.server.hosted("bank131", sid, card={"exp_month": 1})   # a month as a number still works
    assert resp.status_code == 200 and resp.json()["session"]["status"] == "in_progress"


def test_project_header_is_taken_as_sent(bank):
    """Only SP and HTAB surround a header value; a project name ending in NBSP is another project,
    not my-project with its signature checked."""
    raw = b'{"amount_details":{"amount":100,"currency":"rub"}}'
    resp = bank.client.raw("/api/v1/session/create", raw, headers={"X-PARTNER-PROJECT": "my-project\u00a0"})
    assert resp.status_code == 200, resp.text
    sid = resp.json()["session"]["id"]
    last = bank.server.journal(provider="bank131", limit=1)[-1]
    assert last["verified"] is False
    assert "not found" in _is_envelope(bank.client.status(sid))


def test_recurrent_option_with_token_payment_rejected(bank):
    body = token_charge("a" * 64)
    body["payment_options"] = {"recurrent": True}
    _is_envelope(bank.client.init_payment(body))


@pytest.mark.parametrize("path", ["/api/v1/session/status", "/api/v1/session/confirm", "/api/v2/session/cancel",
                                  "/api/v1/session/refund", "/api/v1/token/info", "/api/v1/recurrent/disable"])
def test_missing_fields_on_every_method(bank, path):
    _is_envelope(bank.client.post(path, {}))


def test_unknown_paths_and_methods(bank):
    _is_envelope(bank.client.post("/api/v1/nothing/here", {}), status=404)
    resp = requests.get(f"{bank.server.url}/bank131/api/v1/session/status", timeout=10,
                        headers={"X-PARTNER-PROJECT": "my-project", "X-PARTNER-SIGN": "x"})
    assert resp.status_code == 405 and resp.json()["status"] == "error"


def test_no_500_in_journal(bank):
    bank.client.raw("/api/v1/session/create", b"{")
    bank.client.post("/api/v1/token/info", {"type": "card"})
    bank.client.post("/api/v1/token", {"acquiring_widget": {"session_id": 5}})
    assert all(e["status"] < 500 for e in bank.server.journal(provider="bank131"))


def test_another_project_cannot_see_sessions_or_tokens(bank):
    sid, _ = bank.pay_and_confirm(first_payment())
    token = bank.last_webhook("payment_finished")["session"]["acquiring_payments"][0]["recurrent"]["token"]
    key = new_key()
    bank.server.admin("PUT", "/config", json={"providers": {"bank131": {"projects": {
        "other": {"public_key": public_pem(key)}}}}})
    other = Bank131Client(bank.server.url, "other", key)
    for method in ("status", "confirm", "cancel", "refund"):
        desc = _is_envelope(other.session(method, {"session_id": sid}))
        assert "not found" in desc
    _is_envelope(other.post("/api/v1/token", {"acquiring_widget": {"session_id": sid}}))
    _is_envelope(other.token_info(token))
    _is_envelope(other.disable(token))
    _is_envelope(other.init_payment(token_charge(token)))
    assert bank.client.token_info(token).json()["info"]["is_active"] is True


def test_idempotency_key(bank):
    headers = {"X-PARTNER-IDEMPOTENCY-KEY": "order-42"}
    first = bank.client.init_payment(first_payment(), headers=headers)
    assert first.status_code == 200
    _is_envelope(bank.client.init_payment(first_payment(), headers=headers), code="idempotency_key_already_exists")
    assert len(bank.server.sandbox.store.list("bank131", "session", "my-project")) == 1
    # a failed request releases its key
    bad = first_payment(amount=0)
    _is_envelope(bank.client.init_payment(bad, headers={"X-PARTNER-IDEMPOTENCY-KEY": "k2"}))
    assert bank.client.init_payment(first_payment(), headers={"X-PARTNER-IDEMPOTENCY-KEY": "k2"}).status_code == 200


def test_status_accepts_session_alias(bank):
    sid = bank.client.session("create", {}).json()["session"]["id"]
    assert bank.client.post("/api/v1/session/status", {"session": sid}).json()["session"]["id"] == sid
