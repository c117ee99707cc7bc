"""The ZafaPay page (docs/providers/zafapay.md) documents what is simulated, the magic values and every assumption."""
from __future__ import annotations

import os
import re

from simulator.providers.zafapay import ZafaPay, testcards

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
README = open(os.path.join(ROOT, "docs", "providers", "zafapay.md"), encoding="utf-8").read()


def test_readme_lists_endpoints_cards_codes_and_config():
    for path in ["POST /v1/payments", "GET /v1/payments/{id}", "/capture", "/void", "/refund", "POST /v1/tokens",
                 "GET /v1/customers/{customer_id}/payment-methods", "/block", "/unblock", "/detach",
                 "/_sandbox/hosted/zafapay/", "/checkout/{req_id}"]:
        assert path in README, path
    for number in testcards.CARDS:
        assert number in README, number
    for code in testcards.DECLINE_CODES:
        assert code in README, code
    for flow in testcards.FLOWS:
        assert flow in README, flow
    for key in ZafaPay.config_schema().fields:
        assert f"`{key}`" in README, key
    payment, payment_method = ZafaPay.state_tables()
    for status in (set(payment.states) - {"new"}) | set(payment_method.states):
        assert f"`{status}" in README or f"{status}`" in README or f" {status}" in README, status
    for event in ["payment.succeeded", "payment.failed", "payment.canceled", "payment.refunded", "payment.chargeback"]:
        assert event in README


def test_readme_names_every_assumed_choice_from_the_fact_sheet():
    assert "[ASSUMED]" in README
    assumed = README[README.index("[ASSUMED]"):]
    for choice in ["Idempotency-Key", "payment_method_blocked", "payment_method_detached", "/detach",
                   "HTTP 201", "1 min / 5 min / 30 min / 2 h / 6 h", "hex", "whsec_", "not_found",
                   "is_default", "two decimals", "24 base62", "4242424242424242", "Chargebacks",
                   "card_declined", "Pre-charge check order"]:
        assert choice in assumed, choice
    assert re.search(r"^## \d+\. Not simulated$", README, re.M)
