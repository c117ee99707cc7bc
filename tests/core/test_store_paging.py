"""Paging from the store's indexes (``MemoryStore.select``): the same answers as filtering and
slicing every object, at the cost of the page; and the index buckets the GC does not walk."""
import gc
import random
import sys

import pytest

from simulator.core import store as store_module
from simulator.core.store import MemoryStore

FIELDS = ("color", "size", "every")


def every(obj):
    return True


def make_store(hot=4):
    store = MemoryStore(hot=hot)
    store.add_index("p", "item", "color")
    store.add_index("p", "item", "size")
    store.add_index("p", "item", "every", every)
    return store


def reference(objects, match, offset, limit, newest_first, after, before):
    """What a list endpoint did before it paged from the index: filter everything, reverse, find
    each cursor by scanning and slice."""
    items = [o for o in objects if all(o.get(f) == v or (f == "every" and v is True) for f, v in match.items())]
    ordered = items[::-1] if newest_first else items
    ids = [o["id"] for o in ordered]
    for cursor, following in ((after, True), (before, False)):
        if cursor is None:
            continue
        if cursor not in ids:
            return None
        at = ids.index(cursor)
        ordered, ids = (ordered[at + 1:], ids[at + 1:]) if following else (ordered[:at], ids[:at])
    page = ordered[offset:None if limit is None else offset + limit]
    return len(ordered), [o["id"] for o in page]


def selected(store, tenant, match, *args, **kwargs):
    got = store.select("p", "item", tenant, match, *args, **kwargs)
    return None if got is None else (got[0], [o["id"] for o in got[1]])


@pytest.fixture(scope="module")
def stocked():
    """Two tenants' objects, some moved to another value, some deleted, most compacted."""
    rng = random.Random(7)
    store = make_store()
    mine = {}
    for i in range(240):
        tenant = "t1" if rng.random() < 0.8 else "t2"
        color = rng.choice(("red", "red", "blue", "green", f"own{i}"))
        obj = {"id": f"o{i:03d}", "color": color, "size": rng.choice(("s", "m", "l"))}
        store.put("p", "item", obj["id"], obj, tenant)
        if tenant == "t1":
            mine[obj["id"]] = obj
    for oid in rng.sample(sorted(mine), 30):   # moved within the index: a read, a change, a put
        obj = store.get("p", "item", oid)
        obj["color"] = rng.choice(("red", "blue", "gold"))
        store.put("p", "item", oid, obj, "t1")
        mine[oid] = dict(obj)
    for oid in rng.sample(sorted(mine), 20):
        store.delete("p", "item", oid)
        del mine[oid]
    store.compact()
    return store, list(mine.values())


def lone_colors(objects):
    """A color one object has, with each size: a bucket of one beside one many times larger, whose
    values are checked in the index, not as a set of its numbers."""
    lone = next(o for o in objects if o["color"].startswith("own"))
    return [{"size": size, "color": lone["color"]} for size in ("s", "m", "l")]


def test_a_page_with_filters_and_cursors_is_what_filtering_everything_gives(stocked):
    store, objects = stocked
    ids = [o["id"] for o in objects]
    others = ["o239" if "o239" not in ids else "o238", "nobody", ""]   # another tenant's, unknown, empty
    deleted = sorted({f"o{i:03d}" for i in range(240)} - set(ids))[:2]
    cursors = [None, ids[0], ids[1], ids[len(ids) // 2], ids[-2], ids[-1], *others, *deleted]
    matches = [{"every": True}, {"color": "red"}, {"color": "gold"}, {"color": "own3"}, {"size": "m"},
               {"color": "red", "size": "s"}, {"color": "blue", "size": "l", "every": True}, {"color": "purple"},
               {"color": "gold", "every": True}, *lone_colors(objects),
               {"shape": "round"}, {"color": "red", "shape": "round"}]
    checked = refused = paged_from_cursor = 0
    for match in matches:
        for newest_first in (False, True):
            for after in cursors:
                for before in cursors:
                    for offset, limit in ((0, None), (0, 1), (0, 20), (3, 5), (17, 1000), (10 ** 9, 20)):
                        want = reference(objects, match, offset, limit, newest_first, after, before)
                        got = selected(store, "t1", match, offset, limit, newest_first, after, before)
                        assert got == want, (match, newest_first, after, before, offset, limit)
                        checked += 1
                        refused += want is None
                        paged_from_cursor += bool(want and want[1] and (after or before))
    assert refused > 1000 and checked - refused > 500 and paged_from_cursor > 200   # every outcome, often


def test_a_tenant_sees_only_its_own_objects_and_none_means_every_tenants(stocked):
    store, objects = stocked
    theirs = store.select("p", "item", "t2", {"every": True})
    assert theirs[0] == store.where_count("p", "item", "t2", "every", True) > 0
    assert not {o["id"] for o in theirs[1]} & {o["id"] for o in objects}
    assert store.select("p", "item", "t2", {"every": True}, after=objects[0]["id"]) is None
    anyone = store.select("p", "item", None, {"every": True}, 0, 5, newest_first=True, after=objects[-1]["id"])
    assert anyone[0] == len(objects) + theirs[0] - 1 - sum(1 for o in theirs[1] if o["id"] > objects[-1]["id"])


def test_a_page_decodes_the_page_however_many_objects_the_bucket_holds(store_reads):
    store = make_store(hot=8)
    n = 20_000
    for i in range(n):
        store.put("p", "item", f"o{i:05d}", {"id": f"o{i:05d}", "color": "red" if i % 4 else "blue",
                                            "size": "s" if i % 3 else "m"}, "t1")
    store.compact()
    touched = store_reads(store)
    total, page = store.select("p", "item", "t1", {"every": True}, 100, 20, newest_first=True, after="o12345")
    assert total == 12345 and [o["id"] for o in page] == [f"o{i:05d}" for i in range(12244, 12224, -1)]
    total, page = store.select("p", "item", "t1", {"color": "red"}, 5000, 25, after="o00003", before="o19999")
    red = [f"o{i:05d}" for i in range(n) if i % 4 and 3 < i < 19999]
    assert total == len(red) and [o["id"] for o in page] == red[5000:5025]
    # two filters scan the smaller bucket's numbers in the index, and decode only the page
    total, page = store.select("p", "item", "t1", {"color": "blue", "size": "m"}, 0, 10, newest_first=True)
    assert total == len(range(0, n, 12)) and page[0]["id"] == f"o{max(range(0, n, 12)):05d}"
    assert touched.count("_live") == 20 + 25 + 10 and touched.count("_thaw") <= 20 + 25 + 10
    assert "_peek" not in touched


def test_shared_buckets_hold_their_numbers_where_the_gc_does_not_walk_them():
    # a value most objects hold (a status, or the whole listing): kept in a list, every full
    # collection would read each number, with every request thread stopped
    store = make_store(hot=8)
    for i in range(5000):
        store.put("p", "item", f"o{i}", {"id": f"o{i}", "color": "red", "size": "s"}, "t1")
    gc.collect()
    held = store._seq_of["p", "item"]["o4000"]   # found by identity, as the id's own test does
    assert held > 256   # not a small int every list of small numbers shares
    assert not [o for o in gc.get_objects() if isinstance(o, (list, tuple)) and len(o) > 1000
                and any(x is held for x in o)]
    store.delete("p", "item", "o4000")
    assert store.where_count("p", "item", "t1", "color", "red") == 4999
    assert store.select("p", "item", "t1", {"color": "red"}, after="o4000") is None


def test_an_index_every_object_is_in_costs_a_few_dozen_bytes_an_object():
    # the whole listing's index: one entry in the map of values, eight bytes in the bucket
    # (measured: 47 B an object at 100k, against ~350 B the store's other bookkeeping takes)
    store = make_store(hot=8)
    n = 20_000
    for i in range(n):
        store.put("p", "item", f"o{i}", {"id": f"o{i}"}, "t1")
    bucket = store._shared["p", "t1", "item", "every"][True]
    size = sys.getsizeof(store._values["p", "item", "every"]) + sys.getsizeof(bucket)
    assert len(bucket) == n and size / n < 64


def test_an_ordered_read_pages_as_sorting_every_object_by_its_field_then_creation():
    # updates move objects ahead (or behind: a clock reset), deletes and a tenant's reset take them
    # out, objects stored before the order was declared (a state file) are placed when it is
    rng = random.Random(3)
    store = MemoryStore(hot=4)
    live = {}   # id -> (tenant, creation number)

    def put(i, tenant, **fields):
        obj = store.get("p", "item", f"i{i}") or {"id": f"i{i}"}
        obj.update(fields)
        store.put("p", "item", obj["id"], obj, tenant)
        live.setdefault(obj["id"], (tenant, i))

    for i in range(150):
        put(i, rng.choice("ab"), at=f"T{rng.randrange(20):02d}", odd=i % 2)
    store.declare("p", "item", order="at")
    for i in range(150, 400):
        put(i, rng.choice("ab"), at=f"T{rng.randrange(40):02d}", odd=i % 2)
    for i in rng.sample(range(400), 120):
        put(i, live[f"i{i}"][0], at=f"T{rng.randrange(50):02d}")
    for i in rng.sample(range(400), 40):
        store.delete("p", "item", f"i{i}")
        live.pop(f"i{i}")
    put(400, "a")   # no value: first in creation order among the smallest
    for tenant in "ab":
        for keep in (lambda o: True, lambda o: o.get("odd") == 1):
            expected = sorted((store.get("p", "item", id) for id, (t, _) in live.items() if t == tenant),
                              key=lambda o: (o.get("at") or "", live[o["id"]][1]), reverse=True)
            expected = [o["id"] for o in expected if keep(o)]
            for limit in (1, 7, 100):
                got, offset = [], 0
                while True:
                    page, more = store.ordered("p", "item", tenant, keep, offset, limit)
                    got += [o["id"] for o in page]
                    offset += limit
                    assert more == (offset < len(expected))
                    if not more:
                        break
                assert got == expected
    store.reset("a")
    assert store.ordered("p", "item", "a", lambda o: True, 0, 10) == ([], False)
    store.reset()
    assert store.ordered("p", "item", "b", lambda o: True, 0, 10) == ([], False)
    put(500, "b", at="T00")
    assert [o["id"] for o in store.ordered("p", "item", "b", lambda o: True, 0, 10)[0]] == ["i500"]


def test_an_ordered_read_lists_each_object_once_while_writes_move_them():
    store = MemoryStore(hot=4)
    store.declare("p", "item", order="at")
    for i in range(300):
        store.put("p", "item", f"i{i}", {"id": f"i{i}", "at": f"{i:04d}"}, "t")
    seen, moved = [], iter(range(1000, 2000))

    def keep(obj):
        # each object read writes another: it moves to the front, behind the read
        if len(seen) % 3 == 0:
            i = 299 - len(seen) - 70
            if i >= 0:
                other = store.get("p", "item", f"i{i}")
                other["at"] = f"{next(moved):04d}"
                store.put("p", "item", other["id"], other, "t")
        seen.append(obj["id"])
        return True

    page, more = store.ordered("p", "item", "t", keep, 0, 1000)
    ids = [o["id"] for o in page]
    assert len(ids) == len(set(ids)) and not more
    assert ids[:70] == [f"i{i}" for i in range(299, 229, -1)]


def test_indexes_declared_over_stored_objects_read_each_object_once():
    # a state file's objects are in the store before the providers declare their indexes: at a
    # million stored, every extra pass over them is seconds of start
    store = MemoryStore(hot=4)
    for i in range(50):
        store.put("p", "item", f"i{i}", {"id": f"i{i}", "color": "red" if i % 2 else "blue", "at": f"{i:02d}"}, "t")
    peeked = []
    peek = store._peek
    store._peek = lambda key: peeked.append(key) or peek(key)
    store.declare("p", "item", {"color": None, "odd": lambda o: int(o["id"][1:]) % 2 or None}, "at")
    assert sorted(peeked) == sorted(("p", "item", f"i{i}") for i in range(50))
    assert [o["id"] for o in store.where("p", "item", "t", "odd", 1, limit=2)] == ["i1", "i3"]
    assert store.where_count("p", "item", "t", "color", "blue") == 25
    assert [o["id"] for o in store.ordered("p", "item", "t", every, 0, 2)[0]] == ["i49", "i48"]
    peeked.clear()
    store.declare("p", "item", {"color": None}, "at")   # nothing new: nothing read
    assert peeked == []


def test_an_ordered_read_that_a_reset_interrupts_ends_with_what_it_read(monkeypatch):
    store = MemoryStore(hot=4)
    store.declare("p", "item", order="at")
    for i in range(200):
        store.put("p", "item", f"i{i}", {"id": f"i{i}", "at": f"{i:04d}"}, "t")
    shrink = store._shrink
    chunks = []

    def shrink_then_reset():   # the end of each chunk: a reset lands after the first
        shrink()
        chunks.append(1)
        if len(chunks) == 1:
            store.reset()
    monkeypatch.setattr(store, "_shrink", shrink_then_reset)
    page, more = store.ordered("p", "item", "t", lambda o: True, 0, 150)
    assert [o["id"] for o in page] == [f"i{i}" for i in range(199, 199 - 64, -1)] and not more
    assert store.ordered("p", "item", "t", lambda o: True, 0, 10) == ([], False)


def test_a_search_in_several_fields_gives_each_match_once_in_the_order():
    store = make_store()
    store.declare("p", "item", order="at")

    def found(tenant, pairs, offset=0, limit=10):
        page, more = store.ordered("p", "item", tenant, every, offset, limit, any_of=pairs)
        return [o["id"] for o in page], more
    for i, (color, size) in enumerate([("red", "s"), ("blue", "red"), ("red", "red"), ("green", "m")]):
        store.put("p", "item", f"i{i}", {"id": f"i{i}", "color": color, "size": size, "at": f"{i % 2}"}, "t1")
    store.put("p", "item", "red", {"id": "red", "color": "grey", "size": "l", "at": "0"}, "t1")   # an id that is the value
    store.put("p", "item", "j0", {"id": "j0", "color": "red", "size": "red", "at": "0"}, "t2")
    assert found("t1", [("id", "red"), ("size", "red"), ("color", "red")]) == (["i1", "red", "i2", "i0"], False)
    assert found("t1", [("id", "red"), ("size", "red"), ("color", "red")], 1, 2) == (["red", "i2"], True)
    assert found("t2", [("id", "red"), ("color", "red")]) == (["j0"], False)
    assert found("t1", [("id", "j0"), ("color", "white")]) == ([], False)   # another tenant's id
    store.delete("p", "item", "i2")
    assert found("t1", [("size", "red"), ("color", "red")]) == (["i1", "i0"], False)


@pytest.mark.parametrize("pick,budget", [(4096, 4096), (8, 64)], ids=["as served", "every way a page is found"])
def test_an_ordered_read_with_match_pages_as_filtering_everything_and_reads_only_what_passes(monkeypatch, pick, budget):
    # equal values, callables asked of each distinct value, and a field holding several values (a
    # frozenset), as objects move, change what they hold, go, and tenants share the kind. With a
    # small pick and walk budget, the same reads sort what they pick, walk a set of numbers, and
    # switch from asking indexed values to a set, and from a set to sorting what is left ("era":
    # matches bunched at the old end of the order, where a walk comes last)
    monkeypatch.setattr(store_module, "_PICK", pick)
    monkeypatch.setattr(store_module, "_WALK_BUDGET", budget)
    rng = random.Random(11)
    store = MemoryStore(hot=4)
    store.declare("p", "item", {"color": None, "n": None, "era": None,
                                "tags": lambda o: frozenset(o["tags"]) if o.get("tags") else None}, "at")
    live = {}

    def put(i, tenant, **fields):
        obj = store.get("p", "item", f"i{i}") or {"id": f"i{i}"}
        obj.update(fields)
        store.put("p", "item", obj["id"], obj, tenant)
        live.setdefault(obj["id"], (tenant, i))

    def fields():
        return {"at": f"T{rng.randrange(30):02d}", "color": rng.choice(["red"] * 12 + ["blue", "green"]),
                "n": rng.randrange(100), "tags": rng.sample("abcde", rng.randrange(3))}
    for i in range(600):
        put(i, rng.choice("xy"), **fields())
        store.get("p", "item", f"i{i}")["era"] = "old" if i < 120 else "late" if i < 300 else "new"
        put(i, live[f"i{i}"][0], at="T00" if i < 120 else store.get("p", "item", f"i{i}")["at"])
    for i in rng.sample(range(600), 200):
        put(i, live[f"i{i}"][0], **fields())
    for i in rng.sample(range(600), 50):
        store.delete("p", "item", f"i{i}")
        live.pop(f"i{i}")
    queries = [[("color", "blue")], [("color", "red")], [("color", "purple")], [("tags", "a")],
               [("tags", "a"), ("tags", "b")], [("n", lambda n: n < 5)], [("n", lambda n: n >= 10)],
               [("color", "green"), ("n", lambda n: n % 2 == 0), ("tags", "c")],
               [("color", {"blue", "green"}.__contains__)], [("tags", lambda t: t > "d")],
               [("era", "old")], [("era", "old"), ("n", lambda n: n < 50)], [("era", {"old", "late"}.__contains__)],
               [("era", "new"), ("color", "red")]]

    def holds(obj, match):
        for field, test in match:
            held = obj.get(field)
            held = set(held) if isinstance(held, list) else {held}
            if not any(test(v) if callable(test) else v == test for v in held):
                return False
        return True
    for tenant in "xy":
        for match in queries:
            every = sorted((store.get("p", "item", id) for id, (t, _) in live.items() if t == tenant),
                           key=lambda o: (o["at"], live[o["id"]][1]), reverse=True)
            expected = [o["id"] for o in every if holds(o, match)]
            for limit in (1, 9, 1000):
                got, offset = [], 0
                while True:
                    page, more = store.ordered("p", "item", tenant, lambda o: holds(o, match), offset, limit, match)
                    got += [o["id"] for o in page]
                    offset += limit
                    assert more == (offset < len(expected))
                    if not more:
                        break
                assert got == expected, match
            # only what passes is read: picked by its buckets, or skipped on the walk by the index
            peeked = []
            peek = store._peek
            store._peek = lambda key: peeked.append(key) or peek(key)
            try:
                store.ordered("p", "item", tenant, lambda o: holds(o, match), 0, 1000, match)
            finally:
                del store._peek
            assert sorted(peeked) == sorted(("p", "item", id) for id in expected)


def test_an_ordered_read_from_picked_objects_that_a_reset_interrupts_ends_with_what_it_read(monkeypatch):
    store = MemoryStore(hot=4)
    store.declare("p", "item", {"color": None}, "at")
    for i in range(1000):
        store.put("p", "item", f"i{i}", {"id": f"i{i}", "at": f"{i:04d}", "color": "blue" if i % 10 else "red"}, "t")
    shrink = store._shrink
    chunks = []

    def shrink_then_reset():
        shrink()
        chunks.append(1)
        if len(chunks) == 1:   # a reset after the first chunk, then objects numbered afresh
            store.reset()
            for i in range(1000):
                store.put("p", "item", f"k{i}", {"id": f"k{i}", "at": "9999", "color": "red"}, "other")
    monkeypatch.setattr(store, "_shrink", shrink_then_reset)
    page, more = store.ordered("p", "item", "t", lambda o: o["color"] == "red", 0, 100, [("color", "red")])
    assert [o["id"] for o in page] == [f"i{i}" for i in range(990, 990 - 640, -10)] and not more


def test_a_callable_most_values_pass_is_not_asked_of_every_value():
    # one text per object: when a quarter of the first values asked pass, the page is walked for
    # (a few more asks), not picked from every value; a rare match is picked from all of them
    store = MemoryStore(hot=4)
    store.declare("p", "item", {"text": None}, "at")
    for i in range(5000):
        store.put("p", "item", f"i{i}", {"id": f"i{i}", "at": f"{i:05d}", "text": f"name {i}"}, "t")
    asked = []

    def counted(wanted):
        def test(text):
            asked.append(text)
            return wanted in text
        return test
    page, more = store.ordered("p", "item", "t", lambda o: "name" in o["text"], 0, 10, [("text", counted("name"))])
    assert [o["id"] for o in page] == [f"i{i}" for i in range(4999, 4989, -1)] and more
    assert len(asked) <= 256 + 11
    asked.clear()
    page, more = store.ordered("p", "item", "t", lambda o: "name 1234" in o["text"], 0, 10,
                               [("text", counted("name 1234"))])
    assert [o["id"] for o in page] == ["i1234"] and not more and len(asked) == 5000
