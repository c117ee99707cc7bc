"""Notification API and the callback re-sent until the notification is marked read."""
from __future__ import annotations

from datetime import timedelta

from simulator.providers.paysera import Paysera
from paysera_helpers import client, hosted_token, notification_ids  # noqa: F401


def seconds(delta: timedelta) -> int:
    return int(delta.total_seconds())


def test_schedule_is_exponential_within_seven_days():
    schedule = Paysera.webhook_schedule
    assert schedule[0] == timedelta(minutes=1)
    assert all(b == min(a * 2, timedelta(hours=6)) for a, b in zip(schedule, schedule[1:]))
    assert sum(schedule, timedelta()) <= timedelta(days=7)
    assert sum(schedule, timedelta()) + timedelta(hours=6) > timedelta(days=7)


def test_callback_resent_at_each_step_until_read(server, client, receiver):
    hosted_token(server, client, receiver)
    server.flush()
    assert len(receiver.requests) == 1
    nid = notification_ids(receiver)[0]
    for step in Paysera.webhook_schedule[:12]:
        before = len(receiver.requests)
        server.admin("POST", "/clock", json={"advance_seconds": seconds(step) - 1}).raise_for_status()
        assert len(receiver.requests) == before          # not yet due
        server.admin("POST", "/clock", json={"advance_seconds": 1}).raise_for_status()
        assert len(receiver.requests) == before + 1      # due: sent again, same notification
        assert notification_ids(receiver)[-1] == nid
    assert client.read(nid).json()["status"] == "read"
    count = len(receiver.requests)
    server.advance("P8D")
    assert len(receiver.requests) == count


def test_an_unread_notification_is_resent_for_seven_days_then_stops(server, client, receiver):
    receiver.status = 500          # the callback's answer does not matter; only read does
    hosted_token(server, client, receiver)
    server.flush()
    server.advance("P10D")
    assert len(receiver.requests) == len(Paysera.webhook_schedule) + 1
    delivery = server.webhooks(provider="paysera")[0]
    assert delivery["next_attempt_at"] is None
    assert client.notifications(status="new").json()["items"][0]["id"] == notification_ids(receiver)[0]


def test_successful_callback_does_not_stop_resending(server, client, receiver):
    hosted_token(server, client, receiver)
    server.flush()
    server.advance("PT1M")
    assert len(receiver.requests) == 2


def test_notification_get_list_and_status_filter(server, client, receiver):
    hosted_token(server, client, receiver)
    hosted_token(server, client, receiver)
    server.flush()
    first, second = notification_ids(receiver)
    note = client.notification(first).json()
    assert set(note) == {"id", "event", "status", "created_at", "data"}
    assert note["status"] == "new" and note["event"] == "payment_request.captured"
    client.read(first)
    new = client.notifications(status="new").json()
    read = client.notifications(status="read").json()
    assert [n["id"] for n in new["items"]] == [second]
    assert [n["id"] for n in read["items"]] == [first]
    assert new["_metadata"]["total"] == 1 and new["_metadata"]["limit"] == 20
    assert client.notification(first).json()["status"] == "read"
    # marking read twice is harmless
    assert client.read(first).status_code == 200
    bad = client.notifications(status="done")
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_parameters"
    assert client.notifications(limit="201").status_code == 400
    missing = client.notification("nope")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert client.read("nope").status_code == 404


def test_read_stops_only_that_notification(server, client, receiver):
    hosted_token(server, client, receiver)
    hosted_token(server, client, receiver)
    server.flush()
    first, second = notification_ids(receiver)
    client.read(first)
    server.advance("PT1M")
    assert notification_ids(receiver)[2:] == [second]


def test_callback_delivered_in_the_background_in_auto_mode(receiver):
    from simulator.testing import SandboxServer
    from paysera_helpers import PayseraClient
    with SandboxServer({"webhooks": "auto"}) as srv:
        client = PayseraClient(srv.url)
        hosted_token(srv, client, receiver)
        receiver.wait_for(1)
        nid = notification_ids(receiver)[0]
        assert client.notification(nid).json()["event"] == "payment_request.captured"
        assert client.read(nid).json()["status"] == "read"
