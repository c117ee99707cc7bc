"""Webhooks: signed with the sandbox's RSA key, re-sent at growing intervals until answered 200."""
import json
from datetime import datetime

from bank131_client import bank, first_payment, verify  # noqa: F401


def _parse(ts):
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def test_retries_until_200_all_attempts_visible(bank):
    bank.receiver.status = 500
    resp = bank.client.init_payment(first_payment())
    sid = resp.json()["session"]["id"]
    bank.server.flush()
    assert len(bank.receiver.requests) == 1

    for step in ("PT1M", "PT2M", "PT4M", "PT8M"):
        bank.server.advance(step)
    assert len(bank.receiver.requests) == 5
    deliveries = [d for d in bank.server.webhooks(provider="bank131") if d["event_type"] == "ready_to_confirm"]
    assert len(deliveries) == 1
    d = deliveries[0]
    assert d["status"] == "failed" and d["next_attempt_at"] is not None
    assert [a["status"] for a in d["attempts"]] == [500] * 5
    times = [_parse(a["at"]) for a in d["attempts"]]
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:])]
    assert gaps == sorted(gaps) and gaps[0] < gaps[-1]   # growing intervals
    assert json.loads(d["payload"])["session"]["id"] == sid

    # every retry carries a valid signature of the same body
    for r in bank.receiver.requests:
        assert verify(bank.bank_pem, r["body"], r["headers"]["X-PARTNER-SIGN"])

    bank.receiver.status = 200
    bank.server.advance("PT16M")
    d = [d for d in bank.server.webhooks(provider="bank131") if d["event_type"] == "ready_to_confirm"][0]
    assert d["status"] == "delivered" and d["next_attempt_at"] is None
    assert [a["status"] for a in d["attempts"]] == [500] * 5 + [200]
    bank.server.advance("P10D")
    ready = [r for r in bank.receiver.requests if json.loads(r["body"])["type"] == "ready_to_confirm"]
    assert len(ready) == 6   # answered: no more re-sends


def test_signature_is_deterministic_for_a_body(bank):
    """PKCS#1 v1.5 is deterministic: the same body always carries the same signature."""
    bank.receiver.status = 500
    bank.client.init_payment(first_payment())
    bank.server.flush()
    bank.server.advance("PT1M")
    a, b = bank.receiver.requests[:2]
    assert a["body"] == b["body"] and a["headers"]["X-PARTNER-SIGN"] == b["headers"]["X-PARTNER-SIGN"]


def test_project_without_webhook_url_gets_none(server):
    from bank131_client import Bank131Client, new_key
    c = Bank131Client(server.url, "quiet", new_key())
    assert c.init_payment(first_payment()).status_code == 200
    assert server.webhooks(provider="bank131") == []


def test_default_webhook_url_for_unregistered_projects(server, receiver):
    from bank131_client import Bank131Client, new_key
    server.admin("PUT", "/config", json={"providers": {"bank131": {"webhook_url": receiver.url}}})
    c = Bank131Client(server.url, "anyone", new_key())
    sid = c.init_payment(first_payment()).json()["session"]["id"]
    server.flush()
    assert receiver.json()[0]["type"] == "ready_to_confirm" and receiver.json()[0]["session"]["id"] == sid
