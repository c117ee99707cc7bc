"""In-process cost of the request path, as ratios to a bare Flask "hello" app. Asserts nothing.

    python3 benchmarks/bench_hotpath.py [--seconds 2] [--stored 100000] [--profile NAME]

Both sides go through Flask's test client (the same WSGI environ building), so the ratio is the
sandbox's own cost per request: pipeline, auth, validation, machine, journal. ``--stored N`` also
measures a Checkout list by reference and create with N payments stored, and reset time. Memory
per payment is what payments created over the request path leave behind (tracemalloc).
``--profile NAME`` prints a cProfile of one row instead.
"""
from __future__ import annotations

import argparse
import base64
import cProfile
import gc
import hashlib
import hmac
import itertools
import json
import os
import pickle
import pstats
import sys
import tempfile
import time
import tracemalloc
from urllib.parse import quote

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# ahead of the repository's own run.py: `run` below is the benchmark harness beside this file
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from flask import Flask  # noqa: E402

from simulator import create_app  # noqa: E402

from run import B131_PROJECT, CKO_KEY, MAC_ID, MAC_KEY, ZP_KEY, Keys  # noqa: E402  (the harness's credentials)
from serve import payment_id  # noqa: E402

CKO = {"Authorization": f"Bearer {CKO_KEY}"}
ZP = {"Authorization": f"Bearer {ZP_KEY}"}
B131 = B131_PROJECT
HOST = "127.0.0.1:8080"
TENANT = CKO["Authorization"][7:]


def body(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def config(keys: Keys) -> dict:
    return {**keys.config(), "webhooks": "manual"}


def ok(resp, *statuses):
    if resp.status_code not in statuses:
        raise SystemExit(f"{resp.request.method} {resp.request.path}: {resp.status_code} {resp.get_data(True)[:300]}")
    return resp.get_json()


def rows(client, keys: Keys):
    """(name, kind, op) for every measured request; each op sends one request (or one pair)."""
    def post(path, data, headers):
        return client.post(path, data=data, headers={**headers, "Content-Type": "application/json"})
    # Checkout: a customer-initiated payment stores the card, the merchant-initiated one reuses it
    cit = ok(post("/checkout/payments", body({
        "source": {"type": "card", "number": "4242424242424242", "expiry_month": 12, "expiry_year": 2030,
                   "cvv": "100"}, "amount": 1000, "currency": "EUR", "payment_type": "Recurring",
        "merchant_initiated": False, "reference": "bench-cit"}), CKO), 201)
    mit = body({"source": {"type": "id", "id": cit["source"]["id"]}, "amount": 1000, "currency": "EUR",
                "payment_type": "Recurring", "merchant_initiated": True, "previous_payment_id": cit["id"]})
    assert ok(post("/checkout/payments", mit, CKO), 201)["approved"]
    yield "Checkout MIT, stored card", "write", lambda: post("/checkout/payments", mit, CKO)
    yield "Checkout GET /payments/{id}", "read", lambda: client.get(f"/checkout/payments/{cit['id']}", headers=CKO)
    yield "Checkout GET /payments?reference=", "read", \
        lambda: client.get("/checkout/payments?reference=bench-cit", headers=CKO)

    from gr4vy import auth
    g4 = {"Authorization": f"Bearer {auth.get_token(keys.gr4vy_private)}", "x-gr4vy-merchant-account-id": "default"}
    gcit = ok(post("/gr4vy/transactions", body({
        "amount": 1500, "currency": "USD", "country": "US", "intent": "capture", "store": True,
        "payment_source": "recurring", "merchant_initiated": False, "is_subsequent_payment": False,
        "payment_method": {"method": "card", "number": "4111111111111111", "expiration_date": "12/30",
                           "security_code": "123"}}), g4), 201)
    gmit = body({"amount": 1500, "currency": "USD", "intent": "capture", "payment_source": "recurring",
                 "merchant_initiated": True, "is_subsequent_payment": True,
                 "payment_method": {"method": "id", "id": gcit["payment_method"]["id"]}})
    ok(post("/gr4vy/transactions", gmit, g4), 201)
    yield "Gr4vy MIT, vaulted card (JWT)", "write", lambda: post("/gr4vy/transactions", gmit, g4)
    yield "Gr4vy GET /transactions/{id}", "read", lambda: client.get(f"/gr4vy/transactions/{gcit['id']}", headers=g4)

    base = "/paysera/checkout/rest/v1/payment-requests"
    counter = iter(range(10 ** 9))

    def paysera(method, path, payload=None):
        raw = body(payload) if payload is not None else b""
        ts, nonce = str(int(time.time())), base64.b64encode(next(counter).to_bytes(18, "big")).decode()
        ext = ("body_hash=" + base64.b64encode(hashlib.sha256(raw).digest()).decode()
               .replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")) if raw else ""
        text = f"{ts}\n{nonce}\n{method}\n{path}\n127.0.0.1\n8080\n{ext}\n"
        mac = base64.b64encode(hmac.new(MAC_KEY.encode(), text.encode(), hashlib.sha256).digest()).decode()
        headers = {"Authorization": f'MAC id="{MAC_ID}", ts="{ts}", nonce="{nonce}", mac="{mac}"'
                                    + (f', ext="{ext}"' if ext else "")}
        if raw:
            headers["Content-Type"] = "application/json;charset=utf-8"
        return client.open(path, method=method, data=raw or None, headers=headers)

    order = {"business_id": "LcKB4rs-pNVLgQKxZTaGzfZRAuiQPuyE", "price": {"amount": "10.00", "currency": "EUR"},
             "description": "Monthly subscription", "method_key": "card", "payer": {"email": "customer@example.com"},
             "locale": "en", "callback_url": "http://127.0.0.1:9/cb"}
    first = ok(paysera("POST", base, {**order, "order_id": "bench-first", "token_strategy": "required",
                                      "accept_url": "https://shop.example/a", "cancel_url": "https://shop.example/c"}),
               200, 201)
    token = ok(client.post(f"/_sandbox/hosted/paysera/{first['id']}", json={"outcome": "approve"}),
               200)["payment_request"]["issued_token"]

    def authorize():
        pr = ok(paysera("POST", base, {**order, "order_id": "bench-renewal"}), 200, 201)
        return paysera("PUT", f"{base}/{pr['id']}/authorize", {"token": token})
    ok(authorize(), 200)
    yield "Paysera create + authorize with token (2 req)", "write2", authorize
    yield "Paysera GET /payment-requests/{id}", "read", lambda: paysera("GET", f"{base}/{first['id']}")

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    def b131(path, payload=None, raw=None):
        raw = raw if raw is not None else body(payload)
        sign = base64.b64encode(keys.bank131.sign(raw, padding.PKCS1v15(), hashes.SHA256())).decode()
        return client.post(f"/bank131/api/v1/{path}", data=raw, headers={
            "Content-Type": "application/json", "X-PARTNER-PROJECT": B131, "X-PARTNER-SIGN": sign})
    amount = {"amount": 10000, "currency": "rub"}
    sid = ok(b131("session/init/payment", {
        "payment_details": {"type": "card", "card": {"type": "bank_card", "bank_card": {
            "number": "4242424242424242", "expiration_month": "12", "expiration_year": "30", "security_code": "123"}}},
        "amount_details": amount, "customer": {"reference": "bench"}, "payment_options": {"recurrent": True}}),
        200)["session"]["id"]
    ok(b131("session/confirm", {"session_id": sid}), 200)
    rec = ok(b131("session/status", {"session_id": sid}), 200)["session"]["acquiring_payments"][0]["recurrent"]["token"]
    charge = body({"payment_details": {"type": "recurrent", "recurrent": {"token": rec}},
                   "amount_details": amount, "customer": {"reference": "bench"}})
    charge_sign = base64.b64encode(keys.bank131.sign(charge, padding.PKCS1v15(), hashes.SHA256())).decode()
    status_raw = body({"session_id": sid})
    status_sign = base64.b64encode(keys.bank131.sign(status_raw, padding.PKCS1v15(), hashes.SHA256())).decode()
    def signed(raw, sign):
        return {"Content-Type": "application/json", "X-PARTNER-PROJECT": B131, "X-PARTNER-SIGN": sign}

    def charge_confirm():
        init = ok(client.post("/bank131/api/v1/session/init/payment", data=charge, headers=signed(charge, charge_sign)),
                  200)
        return b131("session/confirm", {"session_id": init["session"]["id"]})
    ok(charge_confirm(), 200)
    # the client's RSA signing of each confirm is not the server's cost: it is measured and taken out
    sign_once = per_request(lambda: keys.bank131.sign(status_raw, padding.PKCS1v15(), hashes.SHA256()), 0.3)
    yield "Bank 131 token charge + confirm (2 req)", "write2", (charge_confirm, sign_once)
    yield "Bank 131 session/status", "read", lambda: client.post(
        "/bank131/api/v1/session/status", data=status_raw, headers=signed(status_raw, status_sign))

    zp = {**ZP, "Content-Type": "application/json"}
    zfirst = ok(client.post("/zafapay/v1/payments", headers=zp, data=body(
        {"amount": 10.00, "currency": "usd", "customer_id": "bench", "save_card": True})), 201)
    pmi = ok(client.post(f"/_sandbox/hosted/zafapay/{zfirst['id']}", json={"outcome": "approve"}),
             200)["payment_method_id"]
    zbody = body({"amount": 9.99, "currency": "usd", "customer_id": "bench", "payment_method_id": pmi})
    zc = ok(client.post("/zafapay/v1/payments", headers=zp, data=zbody), 201)
    yield "ZafaPay recurring charge", "write", lambda: client.post("/zafapay/v1/payments", headers=zp, data=zbody)
    yield "ZafaPay GET /payments/{id}", "read", \
        lambda: client.get(f"/zafapay/v1/payments/{zc['transaction_id']}", headers=ZP)


def per_request(op, seconds: float, requests_per_op: int = 1) -> float:
    """CPU seconds per request (median of three runs of ``seconds / 3``): CPU time, not wall time,
    so other processes on a shared machine do not blur the ratios."""
    samples = []
    for _ in range(3):
        n, start = 0, time.process_time()
        while (elapsed := time.process_time() - start) < seconds / 3:
            op()
            n += 1
        samples.append(elapsed / (n * requests_per_op))
    return sorted(samples)[1]


def client_for(app):
    from flask.testing import FlaskClient

    class Client(FlaskClient):
        def open(self, *args, **kwargs):   # a Host header as on loopback: Paysera signs host and port
            kwargs.setdefault("base_url", f"http://{HOST}")
            return super().open(*args, **kwargs)
    return Client(app, app.response_class)


def bare_client():
    app = Flask("bare")
    app.get("/")(lambda: "hello")
    return app.test_client()


def stored(keys: Keys, n: int, seconds: float, table: list) -> None:
    app = create_app(config(keys))
    client = client_for(app)
    store = app.extensions["sandbox"].store
    create = body({"source": {"type": "card", "number": "4242424242424242", "expiry_month": 12,
                              "expiry_year": 2030}, "amount": 1000, "currency": "EUR", "reference": "x"})
    headers = {**CKO, "Content-Type": "application/json"}

    # the listed payment exists at every size: each measurement lists one payment
    ok(client.post("/checkout/payments", data=create.replace(b'"x"', b'"probe"'), headers=headers), 201)

    def measure(label):
        lst = per_request(lambda: client.get("/checkout/payments?reference=probe", headers=CKO), seconds)
        mk = per_request(lambda: client.post("/checkout/payments", data=create, headers=headers), seconds)
        return {"list": lst, "create": mk}

    empty = measure("0")
    template = ok(client.post("/checkout/payments", data=create, headers=headers), 201)
    template = pickle.dumps(store.get("checkout", "payment", template["id"]))
    for i in range(n):
        payment = pickle.loads(template)   # an independent object, as a real create stores
        payment["id"] = payment_id(i)
        payment["reference"] = f"bench-{i}"
        store.put("checkout", "payment", payment["id"], payment, TENANT)
    store.compact()
    full = measure(str(n))
    for what in ("list", "create"):
        table.append((f"Checkout {what} at {n:,} stored", f"{full[what] * 1e6:,.0f} us",
                      f"{empty[what] / full[what]:.2f}", "same at 0", ">= 0.9"))
    gr4vy_lists(client, keys, store, n, seconds, table)
    start = time.perf_counter()
    app.extensions["sandbox"].reset()
    table.append((f"reset with {store.count() or n:,} objects", f"{(time.perf_counter() - start) * 1000:.1f} ms",
                  "", "", "<= 50 ms"))


def gr4vy_lists(client, keys: Keys, store, n: int, seconds: float, table: list) -> None:
    """Gr4vy transaction lists by filters on values a share of the list holds, with ``n`` copies
    of a USD transaction stored and with none: each filter finds the one probe transaction."""
    from gr4vy import auth
    g4 = {"Authorization": f"Bearer {auth.get_token(keys.gr4vy_private)}", "x-gr4vy-merchant-account-id": "default",
          "Content-Type": "application/json"}
    card = {"method": "card", "number": "4111111111111111", "expiration_date": "12/30", "security_code": "123"}
    ok(client.post("/gr4vy/transactions", headers=g4, data=body({
        "amount": 777, "currency": "EUR", "intent": "capture", "payment_method": card, "metadata": {"plan": "probe"}})), 201)
    queries = {"currency": "currency=EUR", "amount": "amount_eq=777", "metadata": "metadata=" + quote('{"plan":"probe"}')}

    def measure():
        return {what: per_request(lambda: client.get(f"/gr4vy/transactions?{query}", headers=g4), seconds)
                for what, query in queries.items()}
    empty = measure()
    made = ok(client.post("/gr4vy/transactions", headers=g4, data=body({
        "amount": 1000, "currency": "USD", "intent": "capture", "payment_method": card})), 201)
    tenant = store.tenant_of("gr4vy", "transaction", made["id"])
    template = pickle.dumps(store.get("gr4vy", "transaction", made["id"]))
    for i in range(n):
        tx = pickle.loads(template)
        tx["id"] = f"{i:08x}-0000-4000-8000-000000000000"
        tx["reconciliation_id"] = f"bench{i}"
        store.put("gr4vy", "transaction", tx["id"], tx, tenant)
    store.compact()   # the compressor thread's CPU is counted too: not the lists' own
    full = measure()
    for what, query in queries.items():
        table.append((f"Gr4vy GET /transactions?{query.split('=')[0]}= at {n:,} stored", f"{full[what] * 1e6:,.0f} us",
                      f"{empty[what] / full[what]:.2f}", "same at 0", ">= 0.9"))


def memory_per_payment(keys: Keys, table: list, count: int = 3000, keyed: bool = False) -> None:
    """Memory each Checkout MIT made over the request path leaves behind (tracemalloc), once the
    bounded journal and the store's live set (1,000 each) are full, so only what grows with the
    number of payments is counted. ``keyed``: each MIT sends an idempotency key of its own, which
    the sandbox keeps (with its answer) for as long as the key's TTL on the virtual clock."""
    app = create_app(config(keys))
    client = client_for(app)
    if keyed:
        numbers, plain_open = itertools.count(), client.open

        def open_with_a_key(*args, **kwargs):
            kwargs["headers"] = {**kwargs.get("headers", {}), "Cko-Idempotency-Key": f"bench-{next(numbers)}"}
            return plain_open(*args, **kwargs)
        client.open = open_with_a_key
    name, _, op = next(rows(client, keys))
    name += ", an idempotency key each" if keyed else ""
    tracemalloc.start()
    for _ in range(1500):
        op()
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(count):
        op()
    gc.collect()
    per = (tracemalloc.get_traced_memory()[0] - before) / count
    tracemalloc.stop()
    table.append((f"memory per payment ({name}, {count:,})", f"{per:,.0f} B", "", "", "<= 2048 B"))


def state_ratio(keys: Keys, seconds: float, table: list, memory_create: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(config(keys), state_path=os.path.join(tmp, "state.db"))
        client = client_for(app)
        name, _, op = next(rows(client, keys))
        t = per_request(op, seconds)
        table.append((f"{name} with --state", f"{t * 1e6:,.0f} us", f"{memory_create / t:.2f}", "in memory", ">= 0.8"))
        app.extensions["sandbox"].close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=1.5, help="per measurement")
    parser.add_argument("--stored", type=int, default=0, help="also measure with this many stored payments")
    parser.add_argument("--profile", help="cProfile the row whose name starts with this")
    args = parser.parse_args()
    keys = Keys()
    app = create_app(config(keys))
    client = client_for(app)
    measured = list(rows(client, keys))
    if args.profile:
        name, kind, op = next(r for r in measured if r[0].startswith(args.profile))
        op = op[0] if isinstance(op, tuple) else op
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(500):
            op()
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(40)
        return
    bare = bare_client()
    ceiling = per_request(lambda: bare.get("/"), args.seconds)
    table = [("bare Flask hello (the ceiling)", f"{ceiling * 1e6:,.0f} us", "1.00", "", "")]
    targets = {"write": 0.5, "write2": 0.4, "read": 0.7}
    first_write = None
    for name, kind, op in measured:
        op, client_cost = op if isinstance(op, tuple) else (op, 0.0)
        t = per_request(op, args.seconds, 2 if kind == "write2" else 1) - client_cost / 2
        first_write = first_write or t
        target = 0.5 if name.startswith("Checkout MIT") else targets[kind] if kind == "read" else 0.4
        table.append((name, f"{t * 1e6:,.0f} us", f"{ceiling / t:.2f}", "ceiling", f">= {target}"))
    state_ratio(keys, args.seconds, table, first_write)
    memory_per_payment(keys, table)
    memory_per_payment(keys, table, keyed=True)
    if args.stored:
        stored(keys, args.stored, args.seconds, table)
    header = ("measurement", "per request", "ratio", "vs", "target")
    widths = [max(len(r[i]) for r in [header, *table]) for i in range(5)]
    for row in [header, tuple("-" * w for w in widths), *table]:
        print(" | ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


if __name__ == "__main__":
    main()
