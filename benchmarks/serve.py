"""``python run.py`` with a bench hook: ``--bench-payments N`` stores N Checkout payments before serving.

    python benchmarks/serve.py --bench-payments 100000 --port 8080 [any run.py flag]

One payment is made through the real request path (test client, full pipeline); N copies of it
with their own ids and references (``bench-<i>``) go into the store directly, because creating a
million payments over HTTP would take hours. The copies are independent objects (unpickled one by
one), so memory per payment is what a real payment costs. Everything else is the production CLI.
"""
from __future__ import annotations

import os
import pickle
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TENANT = "sk_sbox_" + "a" * 27


def payment_id(i: int) -> str:
    """The i-th seeded payment's id, in the provider's shape (pay_ and 26 characters) and, like the
    ids the sandbox draws, in letters: a long run of digits would look like a card number to the
    journal's masking and send every answer that carries it down its slow path."""
    letters = ""
    while i:
        i, digit = divmod(i, 26)
        letters = "abcdefghijklmnopqrstuvwxyz"[digit] + letters
    return "pay_bench" + letters.rjust(21, "a")


def seed_payments(app, count: int) -> None:
    if not count:
        return
    resp = app.test_client().post("/checkout/payments", headers={"Authorization": f"Bearer {TENANT}"}, json={
        "source": {"type": "card", "number": "4242424242424242", "expiry_month": 12, "expiry_year": 2030},
        "amount": 1000, "currency": "EUR", "reference": "bench-template"})
    if resp.status_code != 201:
        raise SystemExit(f"bench seeding: template payment answered {resp.status_code}: {resp.get_data(True)}")
    store = app.extensions["sandbox"].store
    template = pickle.dumps(store.get("checkout", "payment", resp.get_json()["id"], TENANT))
    for i in range(count):
        payment = pickle.loads(template)
        payment["id"] = payment_id(i)
        payment["reference"] = f"bench-{i}"
        store.put("checkout", "payment", payment["id"], payment, TENANT)


def main() -> int:
    from simulator import cli

    argv = sys.argv[1:]
    count = 0
    if "--bench-payments" in argv:
        at = argv.index("--bench-payments")
        count = int(argv[at + 1])
        del argv[at:at + 2]
    make_app = cli.make_app

    def make_seeded_app(args):
        app = make_app(args)
        seed_payments(app, count)
        return app

    cli.make_app = make_seeded_app
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())
