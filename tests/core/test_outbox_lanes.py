"""Attempts due at one instant go out in parallel, but one object's events keep their order."""
import json

from simulator.core.runtime import Sandbox
from simulator.testing import DEFAULT_START


def test_events_of_one_subject_arrive_in_order_while_subjects_go_in_parallel(receiver):
    sb = Sandbox(seed=1, clock_start=DEFAULT_START, webhooks_mode="manual")
    try:
        for step in range(4):
            for subject in range(25):
                sb.outbox.enqueue(provider="none", tenant="t", event_type="e", url=receiver.url, schedule=[],
                                  subject=f"pay_{subject}", body=json.dumps([subject, step]).encode())
        assert len(sb.outbox.flush()) == 100
        seen: dict[int, list[int]] = {}
        for subject, step in receiver.json():
            seen.setdefault(subject, []).append(step)
        assert seen == {subject: [0, 1, 2, 3] for subject in range(25)}
    finally:
        sb.close()
