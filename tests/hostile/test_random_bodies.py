"""Seeded random hostile requests on every route of every provider: bodies mutated from a valid
request (one field swapped for a hostile value, dropped, or joined by one), whole-body junk, form
posts to hosted pages and junk query strings. Whatever arrives: no 5xx, a refused request creates
nothing, and no card number or CVV is left in the journal, the dashboard or the state file."""
from __future__ import annotations

import copy
import json
import random
import re
from urllib.parse import urlencode

import pytest
import requests
from hostile_helpers import CVV, PAN, object_keys

SEED = 20261129
PER_ROUTE = 25
FREE_TEXT_PAN = "5555 5555 5555 4444"     # a number sent where free text belongs
CARD_PANS = (PAN, "4111111111111111")     # numbers sent where card numbers belong

CARD = {"type": "card", "number": PAN, "expiry_month": 12, "expiry_year": 2030, "cvv": CVV}
GR4VY_CARD = {"method": "card", "number": "4111111111111111", "expiration_date": "12/30", "security_code": CVV,
              "redirect_url": "https://merchant.example/r"}
B131_CARD = {"type": "card", "card": {"type": "bank_card", "bank_card": {
    "number": PAN, "expiration_month": "12", "expiration_year": "30", "security_code": CVV}}}
B131_PAYMENT = {"payment_details": B131_CARD, "amount_details": {"amount": 10000, "currency": "rub"},
                "customer": {"reference": "lucky"}, "payment_options": {"recurrent": True,
                                                                        "return_url": "https://shop.example/r"},
                "metadata": {"order": "1"}}

# A valid body per route (by the rule's tail); others start from {}.
BODIES = {
    "checkout": {
        "/payments": {"source": CARD, "amount": 5000, "currency": "USD", "reference": "ORD-1",
                      "description": "d", "metadata": {"k": "v"}, "payment_type": "Recurring",
                      "success_url": "https://shop.example/ok", "failure_url": "https://shop.example/ko"},
        "/captures": {"amount": 100, "reference": "c", "metadata": {"k": "v"}},
        "/refunds": {"amount": 100, "reference": "r"},
        "/voids": {"reference": "v"},
        "/tokens": {k: v for k, v in CARD.items()},
        "/customers": {"email": "a@shop.example", "name": "A", "metadata": {"k": "v"}},
        "/customers/<customer_id>": {"name": "B", "metadata": {"k": "w"}},
        "/instruments": {"type": "card", "number": PAN, "expiry_month": 12, "expiry_year": 2030},
        "/instruments/<instrument_id>": {"expiry_month": 11, "account_holder": {"first_name": "A"}},
    },
    "gr4vy": {
        "/transactions": {"amount": 1299, "currency": "USD", "country": "US", "payment_method": GR4VY_CARD,
                          "intent": "authorize", "external_identifier": "ord-1", "metadata": {"k": "v"}},
        "/capture": {"amount": 100},
        "/refunds": {"amount": 100, "reason": "r"},
        "/payment-methods": {k: v for k, v in GR4VY_CARD.items() if k != "redirect_url"},
        "/buyers": {"display_name": "A", "external_identifier": "b-1"},
        "/buyers/<buyer_id>": {"display_name": "B"},
    },
    "paysera": {
        "/payment-requests": {"business_id": "LcKB4rs-pNVLgQKxZTaGzfZRAuiQPuyE", "order_id": "O-1",
                              "price": {"amount": "10.00", "currency": "EUR"}, "description": "d",
                              "method_key": "card", "payer": {"email": "c@shop.example"}, "locale": "en",
                              "accept_url": "https://shop.example/a", "cancel_url": "https://shop.example/c",
                              "callback_url": "https://shop.example/cb", "token_strategy": "required"},
        "/authorize": {"token": "tok"},
        "/capture": {"capture_amount": {"amount": "5.00", "currency": "EUR"}},
    },
    "bank131": {
        "/session/create": B131_PAYMENT,
        "/session/init/payment": B131_PAYMENT,
        "/session/init/payment/sync": B131_PAYMENT,
        "/session/start/payment": {**B131_PAYMENT, "session_id": "ps_1"},
        "/session/refund": {"session_id": "ps_1", "amount_details": {"amount": 100, "currency": "rub"}},
        "/session/capture": {"session_id": "ps_1", "amount_details": {"amount": 100, "currency": "rub"}},
        "/token": {"acquiring_widget": {"session_id": "ps_1", "show_recurrent_checkbox": True,
                                        "success_return_url": "https://shop.example/ok"}},
        "/token/info": {"type": "recurrent_token", "recurrent_token": {"token": "t"}},
        "/recurrent/status": {"recurrent": {"token": "t"}},
        "/recurrent/disable": {"recurrent": {"token": "t"}},
    },
    "zafapay": {
        "/v1/payments": {"amount": 10.5, "currency": "usd", "customer_id": "cus-1", "save_card": True,
                         "external_id": "ext-1", "metadata": {"k": "v"}, "return_url": "https://shop.example/r"},
        "/capture": {"amount": 1.0},
        "/refund": {"amount": 1.0, "reason": "r"},
        "/v1/tokens": {"card_number": PAN, "exp_month": 12, "exp_year": 2030, "cvc": CVV},
    },
}
FORM = {"number": PAN, "card_number": FREE_TEXT_PAN, "expiration_month": "12", "expiration_year": "30",
        "exp_month": "12", "exp_year": "2030", "security_code": CVV, "cvc": CVV, "cvv": CVV,
        "cardholder_name": "A", "holder_name": "A", "outcome": "approve", "three_ds": "pass", "action": "pay",
        "password": "Checkout1!", "result": "pass", "recurrent_consent": "1", "save_card": "1", "token": "t"}
QUERY_KEYS = ("limit", "skip", "reference", "cursor", "status", "offset", "buyer_id", "external_identifier",
              "number", "cvv", "token", "order_by", "created_at_gte", "amount_eq")
HOSTILE = ["\ud83d", "a\udc00b", 2**63, -2**63, 2**31, 10**30, 1e30, float("nan"), float("inf"), -1, 0, 1.5,
           "", None, True, [], {}, "javascript:alert(1)", "https://shop.example/\r\nSet-Cookie: a=b",
           FREE_TEXT_PAN, f"ref {FREE_TEXT_PAN.replace(' ', '-')}", "x" * 5000, "<script>alert(1)</script>",
           "\x00", "1e30", "NaN", "2026-13-45T99:00:00Z", "ps_1", "pay_x", "../../etc/passwd"]


def deep(depth: int, rng):
    value = []
    for _ in range(depth):
        value = [value] if rng.random() < 0.5 else {"a": value}
    return value


def leaves(value, path=()):
    yield path
    if isinstance(value, dict):
        for k, v in value.items():
            yield from leaves(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from leaves(v, path + (i,))


def hostile_value(rng):
    roll = rng.random()
    if roll < 0.08:
        return deep(rng.choice((70, 900)), rng)
    return copy.deepcopy(rng.choice(HOSTILE))


def mutate(base, rng) -> bytes:
    roll = rng.random()
    if roll < 0.12 or not base:
        return json.dumps(hostile_value(rng)).encode() if rng.random() < 0.8 else bytes(rng.randrange(256) for _ in range(40))
    body = copy.deepcopy(base)
    path = rng.choice([p for p in leaves(body) if p])
    parent = body
    for step in path[:-1]:
        parent = parent[step]
    if roll < 0.25 and isinstance(parent, dict):
        del parent[path[-1]]
    elif roll < 0.35 and isinstance(parent, dict):
        parent[rng.choice(("reference", "metadata", "description", "cvv", "extra"))] = hostile_value(rng)
    else:
        parent[path[-1]] = hostile_value(rng)
    return json.dumps(body).encode()


def routes(app, provider):
    mount = f"/{provider}"
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(mount + "/"):
            continue
        view = app.view_functions[rule.endpoint]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, rule.rule[len(mount):], getattr(view, "_sandbox_public", False)


def base_body(provider, tail):
    table = BODIES[provider]
    if tail in table:
        return table[tail]
    for suffix, body in table.items():
        if tail.endswith(suffix):
            return body
    return {}


def encoded(pairs: dict) -> str:
    """Form/query encoding that, like a hostile client, sends lone surrogates as their bytes."""
    return urlencode({k: v.encode("utf-8", "surrogatepass") for k, v in pairs.items()})


def fill(tail, ids, rng):
    return re.sub(r"<[^>]+>", lambda _: rng.choice(ids) if ids and rng.random() < 0.8 else
                  rng.choice(["x", "4242424242424242", "%ED%A0%BD", "a" * 300, "pay_" + "a" * 26]), tail)


def seed_objects(clients, provider):
    """Create one of everything from the valid bodies, so mutated requests reach real objects."""
    for tail, body in BODIES[provider].items():
        if "<" not in tail and tail.count("/") <= 3:
            path = tail if provider != "paysera" else "/checkout/rest/v1" + tail
            path = path if provider != "bank131" else "/api/v1" + tail
            clients.json(provider, "POST", path, body)


def leaked_pans(text: str, pans) -> list[str]:
    out = []
    for pan in pans:
        digits = re.sub(r"\D", "", pan)
        if re.search(r"[ +-]?".join(digits), text):
            out.append(pan)
    return out


_CVV_FIELD = re.compile(r"""(?i)(cvv2?|cvc2?|security_?code)["']?\s*[:=]\s*["']?""" + CVV)


@pytest.mark.parametrize("provider", ["checkout", "gr4vy", "paysera", "bank131", "zafapay"])
def test_random_requests_never_break_the_provider(hostile, provider):
    rng = random.Random(f"{SEED}-{provider}")
    server = hostile.server
    seed_objects(hostile, provider)
    failures = []
    for method, tail, public in routes(server.app, provider):
        for _ in range(PER_ROUTE):
            ids = sorted(k[2] for k in object_keys(server) if k[0] == provider)
            before = object_keys(server)
            path = fill(tail, ids, rng)
            if method == "GET" or rng.random() < 0.2:
                path += "?" + encoded({rng.choice(QUERY_KEYS): str(hostile_value(rng))[:300]
                                       for _ in range(rng.randrange(1, 4))})
            if method in ("GET", "DELETE"):
                resp = hostile.send(provider, method, path)
            elif public:
                form = {k: str(hostile_value(rng)) if rng.random() < 0.3 else v for k, v in FORM.items()}
                resp = hostile.send(provider, method, path, encoded(form).encode(),
                                    content_type="application/x-www-form-urlencoded")
            else:
                resp = hostile.send(provider, method, path, mutate(base_body(provider, tail), rng))
            if resp.status_code >= 500:
                failures.append(f"{method} {path}: {resp.status_code} {resp.text[:200]}")
            if resp.status_code >= 400 and object_keys(server) - before:
                failures.append(f"{method} {path}: {resp.status_code} but created {object_keys(server) - before}")
    assert not failures, "\n".join(failures[:20])

    journal = json.dumps(server.journal(provider=provider), ensure_ascii=False)
    dashboard = requests.get(server.url + "/_sandbox/", timeout=30).text
    with open(server.state_path, "rb") as fh:
        state = fh.read().decode("latin-1")
    statuses = sorted({e["status"] for e in server.journal(provider=provider)})
    print(provider, statuses, len(server.journal(provider=provider)))
    assert statuses[0] < 300 and statuses[-1] >= 400, statuses
    assert not leaked_pans(journal, CARD_PANS + (FREE_TEXT_PAN,)), "card number in the journal"
    assert not _CVV_FIELD.search(journal), "CVV in the journal"
    assert not leaked_pans(dashboard, CARD_PANS + (FREE_TEXT_PAN,)), "card number on the dashboard"
    assert not leaked_pans(state, CARD_PANS), "card number in the state file"
    assert not _CVV_FIELD.search(state), "CVV in the state file"
