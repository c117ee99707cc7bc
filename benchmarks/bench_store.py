"""Write cost as the store grows, and memory per payment. Prints ratios; asserts nothing.

localstripe re-pickles its whole store per write and slows from 51 to 7.5 creates/s by 2,500
objects; the sandbox's writes should cost the same at 2,500 objects as at zero (ratio ≈ 1).

    python benchmarks/bench_store.py [--objects 2500] [--batch 200]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from simulator import create_app  # noqa: E402

KEY = {"Authorization": "Bearer sk_sbox_" + "a" * 27}
BODY = json.dumps({"source": {"type": "card", "number": "4242424242424242", "expiry_month": 12,
                              "expiry_year": 2030}, "currency": "EUR", "amount": 1000, "capture": False})


def creates_per_second(client, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        resp = client.post("/checkout/payments", data=BODY, headers=KEY, content_type="application/json")
        assert resp.status_code == 201
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=2500)
    parser.add_argument("--batch", type=int, default=200)
    args = parser.parse_args()

    app = create_app({"seed": 1, "clock": {"start": "2026-01-01T00:00:00Z"}, "webhooks": "manual"})
    client = app.test_client()
    empty = creates_per_second(client, args.batch)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    creates_per_second(client, args.objects)
    per_payment = (tracemalloc.get_traced_memory()[0] - before) / args.objects
    tracemalloc.stop()
    full = creates_per_second(client, args.batch)
    print(f"creates/s with an empty store:        {empty:8.1f}")
    print(f"creates/s with {args.objects + args.batch:>5} payments stored:  {full:8.1f}")
    print(f"ratio (full / empty, 1.0 = O(1)):     {full / empty:8.2f}")
    print(f"memory per stored payment (bytes):    {per_payment:8.0f}")


if __name__ == "__main__":
    main()
