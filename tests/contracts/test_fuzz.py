"""schemathesis against every provider's served document, with each provider's real signing:
no 5xx, only documented statuses and bodies, and the documented links walked end to end."""
import json

import pytest
import requests

import signing
from contract_check import schema_validator
from simulator.providers import REGISTERED
from simulator.testing import DEFAULT_START, SandboxServer

# one worker runs these: schemathesis and hypothesis take about three seconds to import, paid once,
# in the test that first needs them, not by every worker as it collects
pytestmark = pytest.mark.xdist_group("fuzz")

HOOK = "http://127.0.0.1:9/hook"   # manual webhooks: deliveries wait in the outbox, never sent
# where the walk starts, and the chain of operations that must answer 2xx along it
WALKS = {
    "checkout": ([("/payments", "post"), ("/customers", "post"), ("/instruments", "post"), ("/tokens", "post")],
                 ["request_payment", "get_payment", "capture_payment", "refund_payment"]),
    "gr4vy": ([("/transactions", "post"), ("/buyers", "post"), ("/payment-methods", "post")],
              ["create_transaction", "get_transaction", "capture_transaction", "create_refund"]),
    "paysera": ([("/checkout/rest/v1/payment-requests", "post")],
                ["create_payment_request", "get_payment_request", "cancel"]),
    "bank131": ([("/api/v1/session/init/payment", "post"), ("/api/v1/session/create", "post")],
                ["session_init_payment", "session_status", "session_confirm", "session_refund"]),
    "zafapay": ([("/v1/payments", "post"), ("/v1/tokens", "post")],
                ["create_token", "create_payment", "capture", "refund"]),
}


def sandbox(name: str):
    providers, auth = signing.setup(name)
    section = providers[name]
    if name == "bank131":
        next(iter(section["projects"].values()))["webhook_url"] = HOOK
    elif name != "paysera":   # Paysera calls the callback_url each payment request names
        section["webhook_url"] = HOOK
    srv = SandboxServer({"seed": 7, "clock": {"start": DEFAULT_START}, "webhooks": "manual",
                         "providers": providers})
    return srv, signing.session(auth)


def hosted(operation) -> bool:
    return "hosted pages" in (operation.definition.raw.get("tags") or [])


@pytest.mark.parametrize("name", [n for n in REGISTERED if n in WALKS])
def test_every_operation_fuzzed(name):
    import fuzzing
    srv, session = sandbox(name)
    with srv:
        schema = fuzzing.load(srv.url, srv.sandbox.providers[name].mount)
        ran = fuzzing.fuzz_operations(schema, session, skip=hosted)
        doc = requests.get(f"{srv.url}/{name}/openapi.json", timeout=30).json()
        api = {f"{m.upper()} {p}" for p, item in doc["paths"].items() for m, op in item.items()
               if "hosted pages" not in op.get("tags", [])}
        assert set(ran) == api


@pytest.mark.parametrize("name", [n for n in REGISTERED if n in WALKS])
def test_links_walked_and_webhooks_conform(name):
    import fuzzing
    srv, session = sandbox(name)
    start, chain = WALKS[name]
    with srv:
        schema = fuzzing.load(srv.url, srv.sandbox.providers[name].mount)
        doc = requests.get(f"{srv.url}/{name}/openapi.json", timeout=30).json()
        visited = fuzzing.walk_links(schema, doc, session, start)
        answered = iter(op for op, status in visited if status < 300)
        assert all(op in answered for op in chain), f"{chain} in this order along {visited}"
        deliveries = srv.webhooks(provider=name)
        fuzzing.fuzz_links(schema, session, f"{srv.url}/_sandbox/reset")
    assert deliveries
    for delivery in deliveries:
        spec = doc["webhooks"].get(delivery["event_type"])
        assert spec, f"undocumented webhook {delivery['event_type']}"
        (media, content), = spec["post"]["requestBody"]["content"].items()
        payload = json.loads(delivery["payload"]) if media.endswith("json") else delivery["payload"]
        errors = [e.message for e in schema_validator(doc, content["schema"]).iter_errors(payload)]
        assert not errors, (delivery["event_type"], errors[:3])


def test_the_fuzz_checks_catch_drift():
    """A document that promises a field the view does not send fails the same checks."""
    import fuzzing
    from schemathesis.core.failures import FailureGroup
    srv, session = sandbox("checkout")
    with srv:
        doc = requests.get(f"{srv.url}/checkout/openapi.json", timeout=30).json()
        doc["components"]["schemas"]["PaymentList"]["required"].append("has_more")
        schema = fuzzing.schemathesis.openapi.from_dict(doc)
        case = schema["/payments"]["GET"].Case()
        with pytest.raises(FailureGroup) as failed:
            case.call_and_validate(base_url=f"{srv.url}/checkout", session=session, checks=fuzzing.CHECKS,
                                   timeout=30)
    assert "has_more" in " ".join(str(e) for e in failed.value.exceptions)
