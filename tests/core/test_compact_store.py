"""Compact storage: objects beyond the live set are compacted and come back unchanged, and a dict
somebody still holds is never compacted, so in-place mutation means what it always did."""
import os
import sys
from datetime import datetime, timezone

import pytest

from simulator.core.store import MemoryStore

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "checkout"))


def compacted(store, *key) -> bool:
    store.compact()   # what the compressor thread does with each batch, now
    return key not in store._hot and key[2] in store._cold.get(key[:2], {})


def fill(store, n, prefix="o"):
    for i in range(n):
        store.put("p", "pay", f"{prefix}{i}", {"id": f"{prefix}{i}", "n": i, "at": datetime(2026, 1, 1, tzinfo=timezone.utc),
                                        "tags": ("a", i), "nested": {"list": [i]}}, "t1")


def test_objects_beyond_the_live_set_are_compacted_and_read_back_unchanged():
    store = MemoryStore(hot=2)
    store.add_index("p", "pay", "n")
    fill(store, 10)
    assert compacted(store, "p", "pay", "o0") and not compacted(store, "p", "pay", "o9")
    got = store.get("p", "pay", "o3")
    assert got == {"id": "o3", "n": 3, "at": datetime(2026, 1, 1, tzinfo=timezone.utc), "tags": ("a", 3),
                   "nested": {"list": [3]}}
    assert store.get("p", "pay", "o3", tenant="t2") is None
    assert [o["n"] for o in store.list("p", "pay", "t1")] == list(range(10))
    assert [o["n"] for o in store.newest("p", "pay", "t1", 1, 3)] == [8, 7, 6]
    assert [o["id"] for o in store.where("p", "pay", "t1", "n", 4)] == ["o4"]
    assert dict(store.items("p", "pay", "t1"))["o0"]["n"] == 0


def test_an_index_lookup_without_a_tenant_finds_every_tenants_objects_in_creation_order():
    store = MemoryStore(hot=1)
    store.add_index("p", "pay", "ref")
    store.add_index("q", "pay", "ref")
    for i, tenant in enumerate(("t1", "t2", "t1", "t3")):
        store.put("p", "pay", f"o{i}", {"id": f"o{i}", "ref": "shared" if i != 2 else "own"}, tenant)
        # the same value under another provider, and under a kind without the index, is not found
        store.put("q", "pay", f"q{i}", {"id": f"q{i}", "ref": "shared"}, tenant)
        store.put("p", "other", f"x{i}", {"id": f"x{i}", "ref": "shared"}, f"t{i + 4}")
    assert [o["id"] for o in store.where("p", "pay", None, "ref", "shared")] == ["o0", "o1", "o3"]
    assert [o["id"] for o in store.where("p", "pay", None, "ref", "shared", 1, 1, newest_first=True)] == ["o1"]
    assert [o["id"] for o in store.where("p", "pay", "t1", "ref", "shared")] == ["o0"]
    assert store.where("p", "pay", None, "ref", "nobody's") == []


def test_a_held_dict_is_never_compacted_so_mutation_without_put_is_kept():
    store = MemoryStore(hot=1)
    fill(store, 1)
    held = store.get("p", "pay", "o0")
    fill(store, 5, "x")                            # would have pushed o0 out
    assert not compacted(store, "p", "pay", "o0")
    held["nested"]["list"].append("late")
    assert store.get("p", "pay", "o0") is held
    del held
    store.put("p", "pay", "x", {"id": "x"}, "t1")
    store.get("p", "pay", "x")
    assert compacted(store, "p", "pay", "o0")       # let go: compacted with the change in it
    assert store.get("p", "pay", "o0")["nested"]["list"] == [0, "late"]


def test_index_of_a_compacted_object_follows_a_put_of_its_new_version():
    store = MemoryStore(hot=1)
    store.add_index("p", "pay", "ref")
    for i in range(4):
        store.put("p", "pay", f"o{i}", {"id": f"o{i}", "ref": "same" if i % 2 else f"r{i}"}, "t1")
    obj = store.get("p", "pay", "o1")
    obj["ref"] = "moved"
    store.put("p", "pay", "o1", obj, "t1")
    assert [o["id"] for o in store.where("p", "pay", "t1", "ref", "same")] == ["o3"]
    assert store.where_count("p", "pay", "t1", "ref", "moved") == 1
    store.delete("p", "pay", "o3")
    assert store.where("p", "pay", "t1", "ref", "same") == [] and store.get("p", "pay", "o3") is None
    assert [o["id"] for o in store.list("p", "pay", "t1")] == ["o0", "o1", "o2"]


def test_json_like_objects_are_marshalled_and_a_kind_marshal_refuses_is_pickled_from_then_on():
    import zlib
    store = MemoryStore(hot=1)
    plain = {"id": "m0", "ok": True, "rate": 1.25, "none": None, "big": 10 ** 30, "pair": (1, "x"),
             "items": [{"n": 1}], "set": {3}}
    store.put("p", "doc", "m0", dict(plain), "t1")
    store.put("p", "doc", "m1", {"id": "m1", "at": datetime(2026, 1, 1, tzinfo=timezone.utc)}, "t1")
    store.put("p", "doc", "m2", {"id": "m2"}, "t1")
    store.put("p", "doc", "m3", {"id": "m3"}, "t1")
    store.compact()

    def written_with(oid):
        blob = store._cold["p", "doc"][oid]
        return zlib.decompressobj(zdict=store._primers["p", "doc"]).decompress(blob)[:1]

    # marshal while it can carry the kind; after the datetime, pickle even for plain objects
    assert [written_with(oid) for oid in ("m0", "m1", "m2")] == [b"m", b"p", b"p"]
    got = store.get("p", "doc", "m0")
    assert got == plain and [type(got[k]) for k in ("ok", "rate", "pair", "set")] == [bool, float, tuple, set]
    assert store.get("p", "doc", "m1")["at"] == datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_something_pickle_cannot_carry_stays_live():
    store = MemoryStore(hot=1)
    store.put("p", "pay", "odd", {"id": "odd", "call": lambda: 1}, "t1")
    fill(store, 3)
    assert compacted(store, "p", "pay", "o0") and not compacted(store, "p", "pay", "odd") and store.get("p", "pay", "odd")["call"]() == 1


@pytest.fixture
def tiny_server(monkeypatch):
    from simulator.testing import DEFAULT_START, SandboxServer
    monkeypatch.setattr(MemoryStore, "HOT", 1)
    srv = SandboxServer({"seed": 1, "clock": {"start": DEFAULT_START}, "webhooks": "manual"}).start()
    yield srv
    srv.stop()


def test_checkout_recurring_flow_with_one_live_object(tiny_server):
    from checkout_sdk.payments.payments import CaptureRequest, PaymentsQueryFilter
    from cko_helpers import MANDATE_3DS, card_source, id_source, payment_request, sdk
    api = sdk(tiny_server.url)
    cit = api.payments.request_payment(payment_request(card_source(), three_ds=MANDATE_3DS, reference="ORD-1",
                                                       success_url="http://127.0.0.1:9/ok",
                                                       failure_url="http://127.0.0.1:9/fail"))
    tiny_server.hosted("checkout", cit.id)
    src = api.payments.get_payment_details(cit.id).source.id
    mits = [api.payments.request_payment(payment_request(id_source(src), amount=1000 + i, merchant_initiated=True,
                                                         previous_payment_id=cit.id, capture=False,
                                                         reference="ORD-1"))
            for i in range(3)]
    assert [m.status for m in mits] == ["Authorized"] * 3
    assert tiny_server.sandbox.store.count() > 4 and len(tiny_server.sandbox.store._hot) <= 2
    cap = CaptureRequest()
    cap.amount = 500
    api.payments.capture_payment(mits[0].id, cap)
    api.payments.void_payment(mits[1].id)
    assert api.payments.get_payment_details(mits[0].id).status == "Partially Captured"
    assert api.payments.get_payment_details(mits[1].id).status == "Voided"
    query = PaymentsQueryFilter()
    query.reference = "ORD-1"
    listed = api.payments.get_payments_list(query)
    assert [(p.id, p.status) for p in listed.data] == [
        (mits[2].id, "Authorized"), (mits[1].id, "Voided"), (mits[0].id, "Partially Captured"), (cit.id, "Captured")]
    actions = api.payments.get_payment_actions(mits[0].id)
    assert [a.type for a in actions.items] == ["Capture", "Authorization"]


def test_compression_waits_until_no_caller_holds_the_lock(monkeypatch):
    # zlib lets go of the interpreter lock: doing that while holding the store's would make every
    # request behind this one wait for the store until the interpreter came back to this thread
    from simulator.core import store as store_module
    store = MemoryStore(hot=1)
    held_while_compressing = []
    real = store_module.zlib.compressobj

    def watched(*args, **kwargs):
        held_while_compressing.append(store.lock._is_owned())
        return real(*args, **kwargs)
    monkeypatch.setattr(store_module.zlib, "compressobj", watched)
    with store.lock:                                   # as a machine does around a payment
        fill(store, 4)
        assert held_while_compressing == []
        assert not compacted(store, "p", "pay", "o0") and store.get("p", "pay", "o0")["n"] == 0
    store.compact()
    assert held_while_compressing and not any(held_while_compressing)
    assert [compacted(store, "p", "pay", f"o{i}") for i in range(4)] == [False, True, True, True]
    assert [store.get("p", "pay", f"o{i}")["n"] for i in range(4)] == [0, 1, 2, 3]


def test_an_object_taken_back_while_being_compressed_stays_live_with_its_change(monkeypatch):
    # the finished compression of its old version must not be kept: a stale compressed copy
    # would outlive the object's deletion and, read back, would undo the change
    from simulator.core import store as store_module
    store = MemoryStore(hot=1)
    fill(store, 2)
    real = store_module.zlib.compressobj
    raced = []

    def compress_while_another_thread_writes(*args, **kwargs):
        if not raced:
            raced.append(True)
            obj = store.get("p", "pay", "o1")
            obj["n"] = "changed"
            store.put("p", "pay", "o1", obj, "t1")
        return real(*args, **kwargs)
    with store.lock:
        store.get("p", "pay", "o0")                # o1 leaves the live set, to be compressed
    monkeypatch.setattr(store_module.zlib, "compressobj", compress_while_another_thread_writes)
    store.compact()
    assert raced and not compacted(store, "p", "pay", "o1") and "o1" not in store._cold["p", "pay"]
    monkeypatch.setattr(store_module.zlib, "compressobj", real)
    store.get("p", "pay", "o0")                    # o1 leaves again, with its change
    assert compacted(store, "p", "pay", "o1") and store.get("p", "pay", "o1")["n"] == "changed"
    store.delete("p", "pay", "o1")
    assert "o1" not in store._cold["p", "pay"] and ("p", "pay", "o1") not in store._hot


def test_a_long_operation_under_the_lock_compresses_in_place_past_a_bound(monkeypatch):
    from simulator.core import store as store_module
    monkeypatch.setattr(store_module, "_UNPACKED_LIMIT", 5)
    store = MemoryStore(hot=1)
    with store.lock:
        fill(store, 20)
        assert len(store._leaving) <= 6 and compacted(store, "p", "pay", "o0")
    assert [o["n"] for o in store.list("p", "pay", "t1")] == list(range(20))


def test_compression_happens_on_the_compressor_thread_a_batch_at_a_time(monkeypatch):
    # zlib gives up the interpreter lock while it deflates, and a request thread that gives it up
    # waits behind the other requests to get it back: request threads must never compress
    import threading
    import time
    from simulator.core import store as store_module
    real = store_module.MemoryStore._compress
    compressed_on = []

    def watched(self, key, raw):
        if self is store:   # the compressor thread serves every store: stores of earlier tests too
            compressed_on.append(threading.current_thread().name)
        return real(self, key, raw)
    monkeypatch.setattr(store_module.MemoryStore, "_compress", watched)
    store = MemoryStore(hot=1)
    fill(store, store_module._BATCH)             # one short of a batch has left the live set
    assert compressed_on == [] and len(store._leaving) == store_module._BATCH - 1
    assert store.get("p", "pay", "o0")["n"] == 0   # readable meanwhile, and back live
    fill(store, 2, "x")                            # a batch is full: handed to the compressor
    # the batch is what has left when the compressor takes it: objects pushed out after that (o0
    # again, x0) wait for the next batch, so only the first batch's are waited for
    first = [("p", "pay", f"o{i}") for i in range(1, store_module._BATCH)]
    deadline = time.monotonic() + 10
    while any(key in store._leaving for key in first) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(key in store._leaving for key in first) and len(store._leaving) <= 2 and compressed_on
    assert set(compressed_on) == {"sandbox-compressor"}
    assert [store.get("p", "pay", f"o{i}")["n"] for i in range(store_module._BATCH)] == list(range(store_module._BATCH))


def test_an_object_leaves_the_live_set_as_it_is_and_its_batch_is_serialized_later(monkeypatch):
    # serializing is the compressor's work, a batch at a time: on a request it costs twice as much
    from simulator.core import store as store_module
    packed = []
    real = store_module.MemoryStore._pack

    def watched(self, key, obj):
        packed.append(key[2])
        return real(self, key, obj)
    monkeypatch.setattr(store_module.MemoryStore, "_pack", watched)
    store = MemoryStore(hot=1)
    for i in range(3):
        store.put("p", "pay", f"o{i}", {"id": f"o{i}", "n": i}, "t1")
    assert packed == [] and ("p", "pay", "o0") not in store._hot
    first = store._leaving["p", "pay", "o0"]
    assert store.get("p", "pay", "o0") is first   # taken back live: the same dict, nothing decoded
    assert compacted(store, "p", "pay", "o1") and sorted(packed) == ["o1", "o2"]
    assert [o["n"] for o in store.list("p", "pay", "t1")] == [0, 1, 2]


def test_the_ids_an_index_numbers_are_held_where_the_gc_does_not_walk_them():
    # one list of every id: each full collection would read the header of every id, ~30 ms at a million
    import gc
    from simulator.core.store import _Numbered
    store = MemoryStore(hot=8)
    store.add_index("p", "pay", "n")
    fill(store, 5000)
    store.delete("p", "pay", "o4001")
    gc.collect()
    held = store._id_of[4000]   # found by identity: other tests' objects may compare oddly
    walked = [len(o) for o in gc.get_objects() if isinstance(o, (list, tuple)) and any(x is held for x in o)]
    assert max(walked, default=0) <= _Numbered.CHUNK
    assert [o["id"] for o in store.where("p", "pay", "t1", "n", 4000)] == ["o4000"]
    assert store.where("p", "pay", "t1", "n", 4001) == []
    assert [o["n"] for o in store.where("p", "pay", "t1", "n", 4999)] == [4999]


def test_a_writer_that_starves_the_compressor_serializes_what_it_pushes_out():
    # a bulk load holds the interpreter: a thousand dicts waiting for the compressor, then let go
    # together, would leave holes in memory
    from simulator.core import store as store_module
    starved = store_module._STARVED
    store = MemoryStore(hot=1)
    with store.lock:   # the compressor cannot take a batch meanwhile
        fill(store, starved + 10)
        waiting = [store._leaving["p", "pay", f"o{i}"] for i in range(starved + 9)]
    assert all(type(w) is dict for w in waiting[:starved])
    assert not any(type(w) is dict for w in waiting[starved:])
    assert [o["n"] for o in store.list("p", "pay", "t1")] == list(range(starved + 10))


def test_the_store_keeps_one_copy_of_a_tenant_however_many_requests_spelled_it():
    # each request parses its credential into a string of its own; kept per object, those copies
    # were ~80 B of every stored payment
    store = MemoryStore(hot=2)
    for i in range(50):
        tenant = "".join(["sk_sbox_", "t" * 27])   # built at run time: a fresh object each time
        store.put("p", "pay", f"o{i}", {"id": f"o{i}"}, tenant)
    assert len({id(store.tenant_of("p", "pay", f"o{i}")) for i in range(50)}) == 1


def test_a_reset_hands_what_it_drops_to_the_freeing_thread(monkeypatch):
    # freeing a thousand live payments on the resetting thread took ~10 ms of the reset, and each
    # freeing thread it started cost another few: one thread frees everything, after the reset
    import queue
    import weakref

    from simulator.core import store as store_module

    class Payment(dict):   # a dict that a weak reference can follow
        pass

    handed = queue.SimpleQueue()
    monkeypatch.setattr(store_module, "_discards", handed)   # no thread takes them in this test
    store = MemoryStore()
    payments = [Payment(id=f"pay_{n}", amount=n) for n in range(3000)]
    for p in payments:
        store.put("checkout", "payment", p["id"], p, "t")
    live = [weakref.ref(p) for p in payments if p is store._hot.get(("checkout", "payment", p["id"]))]
    del payments, p
    assert len(live) >= 500
    store.reset()
    assert store.count() == 0 and store.get("checkout", "payment", "pay_2999") is None
    assert all(ref() is not None for ref in live)   # the reset did not free them itself
    while not handed.empty():
        handed.get()
    assert all(ref() is None for ref in live)
