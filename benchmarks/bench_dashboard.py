"""Time every dashboard page with 100k objects stored. Prints milliseconds; asserts nothing.

The store is filled in-process: a few hundred Checkout.com payments go through the API (so the
journal and the webhook outbox are full of real entries and one recurring series exists), then
stored payments are cloned under fresh ids up to the target count, all in ONE tenant and kind,
the worst case for listings and series lookups.

    python benchmarks/bench_dashboard.py [--objects 100000] [--runs 5]
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from simulator import create_app  # noqa: E402

KEY = {"Authorization": "Bearer sk_sbox_" + "a" * 27}
CARD = {"type": "card", "number": "4242424242424242", "expiry_month": 12, "expiry_year": 2030}


def post(client, body: dict) -> dict:
    resp = client.post("/checkout/payments", data=json.dumps(body), headers=KEY, content_type="application/json")
    assert resp.status_code in (201, 202), resp.get_data(as_text=True)
    return resp.get_json()


def fill(app, objects: int, real: int) -> dict:
    client = app.test_client()
    sb = app.extensions["sandbox"]
    cit = post(client, {"source": CARD, "amount": 1000, "currency": "EUR", "payment_type": "Recurring",
                        "reference": "series-cit"})
    mit = None
    for n in range(real):
        mit = post(client, {"source": {"type": "id", "id": cit["source"]["id"]}, "amount": 1000, "currency": "EUR",
                            "payment_type": "Recurring", "merchant_initiated": True,
                            "previous_payment_id": cit["id"], "reference": f"series-mit-{n}"})
    tenant = sb.store.tenant_of("checkout", "payment", cit["id"])
    template = sb.store.get("checkout", "payment", mit["id"])
    have = sum(n for p, t, k, n in sb.store.groups())
    clone = None
    for n in range(objects - have):
        clone = copy.deepcopy(template)
        clone.update(id=sb.ids.prefixed("pay_", 26), reference=f"ord-{n}", instrument_id=f"src_gone{n}",
                     card_fingerprint=f"FP{n}", status="Declined" if n % 1000 == 0 else "Captured")
        sb.store.put("checkout", "payment", clone["id"], clone, tenant)
    return {"cit": cit["id"], "mit": mit["id"], "clone": clone["id"], "tenant": tenant}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--real", type=int, default=400, help="payments made through the API first")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    app = create_app({"seed": 1, "clock": {"start": "2026-01-01T00:00:00Z"}, "webhooks": "manual",
                      "providers": {"checkout": {"webhook_url": "http://127.0.0.1:9/down"}}})
    started = time.perf_counter()
    ids = fill(app, args.objects, args.real)
    sb = app.extensions["sandbox"]
    stored = sum(n for p, t, k, n in sb.store.groups())
    print(f"stored objects: {stored}  journal: {len(sb.journal.entries())}  deliveries: {len(sb.outbox.list())}"
          f"  (filled in {time.perf_counter() - started:.1f} s)")

    client = app.test_client()
    pages = [
        "/_sandbox/",
        "/_sandbox/ui/objects",
        "/_sandbox/ui/objects?offset=99000",
        f"/_sandbox/ui/objects?id={ids['clone']}",
        "/_sandbox/ui/objects?status=Declined",
        "/_sandbox/ui/objects?status=Captured&offset=50000",
        "/_sandbox/ui/objects?reference=ord-4242",
        "/_sandbox/ui/objects?reference=ord-",        # every clone matches: the worst search
        f"/_sandbox/ui/objects/checkout/payment/{ids['mit']}",
        f"/_sandbox/ui/objects/checkout/payment/{ids['clone']}",
        "/_sandbox/ui/scenarios",
        "/_sandbox/ui/webhooks",
        "/_sandbox/ui/diagrams",
        "/_sandbox/objects?limit=50",
        "/_sandbox/objects/kinds",
        f"/_sandbox/objects/checkout/payment/{ids['mit']}/timeline",
    ]
    print(f"{'page':<72} {'median ms':>9} {'max ms':>8}")
    for page in pages:
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            resp = client.get(page)
            times.append((time.perf_counter() - t0) * 1000)
            assert resp.status_code == 200, (page, resp.status_code)
        print(f"{page.replace(ids['mit'], '<mit>').replace(ids['clone'], '<clone>'):<72} "
              f"{statistics.median(times):9.1f} {max(times):8.1f}")


if __name__ == "__main__":
    main()
