"""Same seed, same frozen clock, same requests: byte-identical responses and webhook payloads."""
import json

import requests

from simulator.testing import ServerProcess, WebhookReceiver, free_port

KEY = {"Authorization": "Bearer sk_sbox_" + "a" * 27, "Content-Type": "application/json"}


def session(url):
    card = {"type": "card", "number": "4242424242424242", "expiry_month": 12, "expiry_year": 2030, "cvv": "100"}
    bodies = []

    def call(method, path, body=None):
        resp = requests.request(method, url + path, data=json.dumps(body) if body is not None else None,
                                headers=KEY, timeout=10)
        bodies.append((resp.status_code, resp.content))
        return resp.json() if resp.content else None

    cit = call("POST", "/checkout/payments", {"source": card, "amount": 5000, "currency": "USD",
                                             "payment_type": "Recurring", "merchant_initiated": False,
                                             "3ds": {"enabled": True, "challenge_indicator": "challenge_requested_mandate"}})
    requests.post(f"{url}/_sandbox/hosted/checkout/{cit['id']}", json={"outcome": "approve"}, timeout=10)
    details = call("GET", f"/checkout/payments/{cit['id']}")
    requests.post(f"{url}/_sandbox/clock", json={"advance": "P30D"}, timeout=10)
    mit = call("POST", "/checkout/payments", {"source": {"type": "id", "id": details["source"]["id"]},
                                             "amount": 5000, "currency": "USD", "payment_type": "Recurring",
                                             "merchant_initiated": True, "previous_payment_id": cit["id"],
                                             "capture": False})
    call("POST", f"/checkout/payments/{mit['id']}/captures", {"amount": 2000})
    call("POST", f"/checkout/payments/{mit['id']}/refunds", {"amount": 500})
    call("GET", f"/checkout/payments/{mit['id']}/actions")
    call("POST", "/checkout/payments", {"source": card, "currency": "USD", "amount": "bad"})
    requests.post(f"{url}/_sandbox/webhooks/flush", timeout=10)
    hooks = requests.get(f"{url}/_sandbox/webhooks", timeout=10).json()["webhooks"]
    return bodies, [h["payload"] for h in hooks]


def run_once(tmp_path, seed, receiver, port):
    cfg = tmp_path / f"cfg-{seed}.yaml"
    cfg.write_text(f"clock: {{start: '2026-01-01T00:00:00Z'}}\nwebhooks: manual\nproviders:\n  checkout:\n"
                   f"    webhook_url: {receiver.url}\n    webhook_signing_key: k\n")
    # the same port too: URLs the sandbox hands out carry the request's host and port
    srv = ServerProcess("--seed", str(seed), "--config", str(cfg), port=port).wait_ready()
    try:
        return session(srv.url)
    finally:
        srv.stop()


def test_two_fresh_servers_answer_byte_identically(tmp_path):
    receiver = WebhookReceiver().start()
    try:
        port = free_port()
        first = run_once(tmp_path, 1, receiver, port)
        second = run_once(tmp_path, 1, receiver, port)
        other = run_once(tmp_path, 2, receiver, port)
    finally:
        receiver.stop()
    assert first[0] == second[0]
    assert first[1] == second[1] and len(first[1]) >= 5
    assert first[0] != other[0]   # the seed is what makes them equal


def auto_session(tmp_path, receiver, port) -> tuple[list, list]:
    """Checkout payments captured by a timer due at once (``capture_on`` now), with ``webhooks:
    auto``: the captures run on the dispatcher thread while the next payments arrive."""
    cfg = tmp_path / "auto.yaml"
    cfg.write_text(f"clock: {{start: '2026-01-01T00:00:00Z'}}\nwebhooks: auto\nproviders:\n  checkout:\n"
                   f"    webhook_url: {receiver.url}\n    webhook_signing_key: k\n")
    card = {"type": "card", "number": "4242424242424242", "expiry_month": 12, "expiry_year": 2030, "cvv": "100"}
    srv = ServerProcess("--seed", "7", "--config", str(cfg), port=port).wait_ready()
    try:
        answers = [requests.post(f"{srv.url}/checkout/payments", headers=KEY, timeout=10, data=json.dumps({
            "source": card, "amount": 100 + i, "currency": "EUR", "reference": f"R{i}",
            "capture_on": "2026-01-01T00:00:00Z"})).content for i in range(20)]
        hooks = receiver.wait_for(40)   # an approval and a capture each
        for answer in answers[:20]:
            answers.append(requests.get(f"{srv.url}/checkout/payments/{json.loads(answer)['id']}/actions",
                                        headers=KEY, timeout=10).content)
        # the receiver's order is the sender's: compare what arrived, not when
        return answers, sorted(h["body"] for h in hooks)
    finally:
        srv.stop()


def test_timers_run_in_the_background_do_not_shift_the_ids_of_requests(tmp_path):
    port = free_port()
    runs = []
    for _ in range(2):
        receiver = WebhookReceiver().start()
        try:
            runs.append(auto_session(tmp_path, receiver, port))
        finally:
            receiver.stop()
    (answers, hooks), (answers_again, hooks_again) = runs
    assert all("Capture" in [a["type"] for a in json.loads(actions)] for actions in answers[20:])
    assert answers == answers_again
    assert hooks == hooks_again and len(hooks) == 40
