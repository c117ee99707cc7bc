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


def test_pending_deliveries_and_their_timers_leave_a_full_collection_one_object_each(tmp_path):
    # a sandbox may hold up to 100k deliveries waiting for a receiver; every full pass of the
    # cyclic GC walks what it tracks, with every request thread stopped meanwhile
    import gc
    from datetime import timedelta

    def pending(sb, n, **extra):
        return [sb.outbox.enqueue(provider="none", tenant="t", event_type="e", url="http://127.0.0.1:9/hook",
                                  body=b'{"n": 1}', schedule=[timedelta(minutes=5)] * 3, subject=f"pay_{i}",
                                  **extra)[0] for i in range(n)]

    path = str(tmp_path / "state.db")
    sb = Sandbox(seed=1, clock_start=DEFAULT_START, webhooks_mode="manual", state_path=path)
    try:
        def tracked() -> int:
            with sb.state._db_lock:   # not amid the state file's applier, whose batch is short-lived
                gc.collect()
                return len(gc.get_objects())

        pending(sb, 10)
        before = tracked()
        made = pending(sb, 2000)
        # the timer of each delivery is the one tracked object it adds
        assert tracked() - before <= 2000 + 100
        assert not any(gc.is_tracked(d) for d in made)
        assert all(not gc.is_tracked(entry) for heap in sb.timers._heaps.values() for entry in heap)
        [headed] = pending(sb, 1, headers={"X-Id": "1"})
    finally:
        sb.close()
    # read back from the state file, deliveries take the same shape, and go out with their headers
    again = Sandbox(seed=1, clock_start=DEFAULT_START, webhooks_mode="manual", state_path=path)
    try:
        gc.collect()
        assert not gc.is_tracked(again.outbox.get(made[0]["id"]))
        kept = again.outbox.get(headed["id"])
        assert kept["_headers"] == (("X-Id", "1"),)
        assert again.outbox._prepare(kept["id"])[3][5]["X-Id"] == "1"
    finally:
        again.close()
