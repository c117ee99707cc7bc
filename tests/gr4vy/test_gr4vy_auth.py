"""Bearer JWT authentication, scopes and tenant isolation, through the official gr4vy SDK."""
import time
import uuid

import jwt
import pytest
import requests
from gr4vy import auth, errors
from gr4vy_helpers import CARD, client, new_key, tenant_of


def register(server, *public_pems):
    resp = server.admin("PUT", "/config", json={"providers": {"gr4vy": {"public_keys": list(public_pems)}}})
    assert resp.status_code == 200, resp.text


def token(private_pem, **claims):
    """A token shaped like the SDK's, with claims overridden (e.g. a stale ``exp``)."""
    now = int(time.time())
    body = {"scopes": ["*.read", "*.write"], "iss": "test", "iat": now, "nbf": now, "exp": now + 600,
            "jti": str(uuid.uuid4()), **claims}
    kid = jwt.get_unverified_header(auth.get_token(private_pem))["kid"]
    return jwt.encode(body, private_pem, algorithm="ES512", headers={"kid": kid})


def journal_entry(server):
    return [e for e in server.journal(provider="gr4vy")][-1]


def test_unregistered_key_is_accepted_and_marked_unverified(server):
    pem, _ = new_key()
    tx = client(server, pem).transactions.create(amount=100, currency="USD", payment_method=CARD)
    assert tx.status == "authorization_succeeded"
    entry = journal_entry(server)
    assert entry["tenant"] == tenant_of(pem)
    assert entry["verified"] is False


def test_registered_key_is_verified(server):
    pem, pub = new_key()
    register(server, pub)
    client(server, pem).transactions.create(amount=100, currency="USD", payment_method=CARD)
    assert journal_entry(server)["verified"] is True


def test_token_signed_by_another_key_is_rejected_once_a_key_is_registered(server):
    pem, pub = new_key()
    other, _ = new_key()
    register(server, pub)
    with pytest.raises(errors.Error401) as exc:
        client(server, other).transactions.list()
    assert exc.value.data.code == "unauthorized"
    assert exc.value.status_code == 401


def test_forged_kid_with_wrong_signature_is_rejected(server):
    pem, pub = new_key()
    other, _ = new_key()
    register(server, pub)
    kid = jwt.get_unverified_header(auth.get_token(pem))["kid"]
    now = int(time.time())
    forged = jwt.encode({"scopes": ["*.read"], "exp": now + 600, "nbf": now, "jti": "x"}, other,
                        algorithm="ES512", headers={"kid": kid})
    with pytest.raises(errors.Error401):
        client(server, None, bearer_auth=forged).transactions.list()
    # the genuine key still works
    assert client(server, pem).transactions.list().result.items == []


def test_expired_token_is_rejected(server):
    pem, _ = new_key()
    stale = token(pem, iat=int(time.time()) - 7200, nbf=int(time.time()) - 7200, exp=int(time.time()) - 3600)
    with pytest.raises(errors.Error401) as exc:
        client(server, None, bearer_auth=stale).transactions.list()
    assert exc.value.data.message == "No valid API authentication found"


def test_expired_token_is_rejected_even_with_a_registered_key(server):
    pem, pub = new_key()
    register(server, pub)
    stale = token(pem, exp=int(time.time()) - 3600)
    resp = requests.get(f"{server.url}/gr4vy/transactions", headers={"authorization": f"bearer {stale}"})
    assert resp.status_code == 401
    assert resp.json()["code"] == "unauthorized"


def test_not_yet_valid_token_is_rejected(server):
    pem, _ = new_key()
    future = token(pem, nbf=int(time.time()) + 3600, exp=int(time.time()) + 7200)
    resp = requests.get(f"{server.url}/gr4vy/transactions", headers={"authorization": f"Bearer {future}"})
    assert resp.status_code == 401


def test_freshness_uses_the_wall_clock_not_the_virtual_clock(server):
    pem, _ = new_key()
    sdk = client(server, pem)
    server.advance("P400D")   # the virtual clock is far ahead; freshly signed tokens stay valid
    assert sdk.transactions.list().result.items == []


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer", "Bearer not.a.jwt", "Bearer a.b.c"])
def test_missing_or_malformed_authorization_is_rejected(server, header):
    headers = {} if header is None else {"authorization": header}
    resp = requests.get(f"{server.url}/gr4vy/transactions", headers=headers)
    assert resp.status_code == 401
    body = resp.json()
    assert body == {"type": "error", "code": "unauthorized", "status": 401,
                    "message": "No valid API authentication found", "details": []}
    assert errors.Error401Data.model_validate(body).code == "unauthorized"


def test_hs256_token_is_rejected(server):
    forged = jwt.encode({"exp": int(time.time()) + 600, "scopes": ["*.read"]}, "s" * 40, algorithm="HS256",
                        headers={"kid": "abc"})
    resp = requests.get(f"{server.url}/gr4vy/transactions", headers={"authorization": f"Bearer {forged}"})
    assert resp.status_code == 401


def test_token_without_the_operation_scope_is_forbidden(server):
    pem, _ = new_key()
    reader = client(server, pem, bearer_auth=auth.with_token(pem, scopes=["transactions.read"]))
    assert reader.transactions.list().result.items == []
    with pytest.raises(errors.Error403) as exc:
        reader.transactions.create(amount=100, currency="USD", payment_method=CARD)
    assert exc.value.data.code == "forbidden"
    with pytest.raises(errors.Error403):
        reader.buyers.list()


def test_two_merchant_accounts_never_see_each_others_data(server):
    pem, _ = new_key()
    first = client(server, pem, merchant_account_id="merchant-a")
    second = client(server, pem, merchant_account_id="merchant-b")
    tx = first.transactions.create(amount=100, currency="USD", payment_method=CARD, store=True)
    buyer = first.buyers.create(display_name="A buyer")
    assert tx.merchant_account_id == "merchant-a"
    with pytest.raises(errors.Error404):
        second.transactions.get(transaction_id=tx.id)
    with pytest.raises(errors.Error404):
        second.payment_methods.get(payment_method_id=tx.payment_method.id)
    with pytest.raises(errors.Error404):
        second.buyers.get(buyer_id=buyer.id)
    with pytest.raises(errors.Error404):
        second.transactions.capture(transaction_id=tx.id)
    assert second.transactions.list().result.items == []
    assert second.buyers.list().result.items == []
    with pytest.raises(errors.Error400):   # another account's stored card cannot be charged
        second.transactions.create(amount=100, currency="USD",
                                   payment_method={"method": "id", "id": tx.payment_method.id})
    assert [t.id for t in first.transactions.list().result.items] == [tx.id]


def test_missing_merchant_header_means_the_default_account(server):
    pem, _ = new_key()
    implicit = client(server, pem, merchant_account_id=None)
    explicit = client(server, pem, merchant_account_id="default")
    tx = implicit.transactions.create(amount=100, currency="USD", payment_method=CARD)
    assert tx.merchant_account_id == "default"
    assert explicit.transactions.get(transaction_id=tx.id).id == tx.id


def test_two_keys_are_two_tenants(server):
    one, _ = new_key()
    two, _ = new_key()
    tx = client(server, one).transactions.create(amount=100, currency="USD", payment_method=CARD)
    with pytest.raises(errors.Error404):
        client(server, two).transactions.get(transaction_id=tx.id)


def test_sdk_without_credentials_gets_the_401(server, monkeypatch):
    from gr4vy import Gr4vy
    monkeypatch.delenv("GR4VY_BEARER_AUTH", raising=False)
    anonymous = Gr4vy(server_url=f"{server.url}/gr4vy", timeout_ms=10000)
    with pytest.raises(errors.Error401) as exc:
        anonymous.transactions.list()
    assert exc.value.data.code == "unauthorized"
