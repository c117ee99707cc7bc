"""Core pieces that every provider relies on."""
import json
import random
import re
import socket
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from simulator.core import cards, money
from simulator.core import journal as journal_module
from simulator.core.clock import Clock, iso_z, parse_duration
from simulator.core.idempotency import NEW, REPLAY, IdempotencyKeys
from simulator.core.ids import ALNUM, HEX, IdFactory
from simulator.core.journal import Journal
from simulator.core.state import StateFile
from simulator.core.timers import Dispatcher, Timers

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize("text,expected", [("P30D", timedelta(days=30)), ("PT10M", timedelta(minutes=10)),
                                           ("P1DT2H", timedelta(days=1, hours=2)), ("P2W", timedelta(weeks=2)),
                                           ("PT0.5S", timedelta(seconds=0.5))])
def test_durations(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["30D", "P", "PT", "P1M", "P1Y", "soon", "P1DT"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_clock_follows_freezegun_without_a_start():
    # in a subprocess: modules first imported under freeze_time (pydantic models of an SDK, say)
    # would keep freezegun's FakeDatetime as their datetime type for the rest of the session
    import subprocess
    import sys
    code = ("from datetime import timedelta\n"
            "from freezegun import freeze_time\n"
            "from simulator.core.clock import Clock\n"
            "clock = Clock()\n"
            "with freeze_time('2030-05-05T10:00:00Z'):\n"
            "    clock.advance(timedelta(days=1))\n"
            "    print(clock.now().isoformat())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "2030-05-06T10:00:00+00:00"


def test_tenant_offsets_are_separate():
    clock = Clock(T0)
    clock.advance(timedelta(days=2), "a")
    assert clock.now("a") - clock.now("b") == timedelta(days=2)
    clock.reset("a")
    assert clock.now("a") == T0


def test_advance_runs_each_timer_at_its_own_instant():
    clock = Clock(T0)
    timers = Timers(clock)
    seen = []

    def chain(tenant, n):
        seen.append(clock.now(tenant))
        if n:
            timers.at(clock.now(tenant) + timedelta(minutes=5 * n), tenant, "chain", {"n": n - 1})

    timers.register("chain", chain)
    timers.at(T0 + timedelta(minutes=1), "t", "chain", {"n": 3})
    timers.advance(timedelta(days=1))
    assert [s - T0 for s in seen] == [timedelta(minutes=m) for m in (1, 16, 26, 31)]
    assert clock.now() == T0 + timedelta(days=1)


def _from_another_thread(fn):
    """``fn()`` run by another thread, as a request thread would: waited for."""
    worker = threading.Thread(target=fn)
    worker.start()
    worker.join()


def _noted_by_a_request(timers, clock, tenant: str, n: int) -> None:
    """A request thread schedules a ``note`` due now, while a run is under way."""
    _from_another_thread(lambda: timers.at(clock.now(tenant), tenant, "note", {"n": n}))


def test_a_run_does_not_take_what_other_threads_schedule_meanwhile():
    # every write under load makes a delivery due at once: a run (and the advance around it) that
    # took those too would chase them for as long as the writes go on
    clock = Clock(T0)
    timers = Timers(clock)
    ran = []

    def note(tenant, n):
        ran.append(n)
        if n < 3:   # a request arrives while this one runs: its timer is due now
            _noted_by_a_request(timers, clock, tenant, n + 10)

    timers.register("note", note)
    timers.at(T0, "t", "note", {"n": 1})
    timers.at(T0 + timedelta(minutes=5), "t", "note", {"n": 2})
    timers.advance(timedelta(minutes=10))
    assert ran == [1, 2]
    assert sorted(t.args["n"] for t in timers.pending()) == [11, 12]
    assert timers.run_due() == 2 and ran == [1, 2, 11, 12]   # the next run takes them
    assert clock.now() == T0 + timedelta(minutes=10)


def test_a_run_takes_what_its_own_work_schedules_from_any_thread():
    # a webhook's next attempt is scheduled by the thread that reads the answer, under the key of
    # the attempt the run took; a handler's own follow-up is scheduled by the run's thread
    clock = Clock(T0)
    timers = Timers(clock)
    attempts, follow_ups = [], []

    def attempt(lanes, finished):
        for lane in lanes:
            for timer in lane:
                attempts.append(clock.now(timer.tenant) - T0)
                if len(attempts) < 3:
                    _from_another_thread(lambda: timers.at(clock.now(timer.tenant) + timedelta(minutes=5),
                                                           timer.tenant, "attempt", {"lane": "d1"}, key=timer.key))
                finished(timer)

    timers.register("attempt", lanes=attempt)
    timers.register("follow", lambda tenant, n: follow_ups.append(n) or (
        n < 2 and timers.at(clock.now(tenant), tenant, "follow", {"n": n + 1})))
    timers.at(T0, "t", "attempt", {"lane": "d1"}, key="webhook:d1")
    timers.at(T0, "t", "follow", {"n": 0})
    timers.advance(timedelta(hours=1))
    assert attempts == [timedelta(0), timedelta(minutes=5), timedelta(minutes=10)]
    assert follow_ups == [0, 1, 2] and timers.pending() == []


def test_a_reset_during_a_run_drops_what_the_run_set_aside():
    clock = Clock(T0)
    timers = Timers(clock)
    ran = []

    def note(tenant, n):
        ran.append(n)
        if n == 1:
            _noted_by_a_request(timers, clock, tenant, 2)
            timers.at(clock.now(tenant) + timedelta(minutes=1), "u", "note", {"n": 4})   # the run's own
            _noted_by_a_request(timers, clock, "u", 3)
        if n == 4:
            timers.reset("t")

    timers.register("note", note)
    timers.at(T0, "t", "note", {"n": 1})
    timers.advance(timedelta(minutes=2))
    assert ran == [1, 4]
    assert [t.args["n"] for t in timers.pending()] == [3]   # tenant u's, set aside, is kept
    assert timers.run_due() == 1 and ran == [1, 4, 3]


def test_a_timer_that_finishes_after_a_reset_leaves_the_row_of_a_newer_timer_with_its_key(tmp_path):
    # a webhook attempt may still be on the wire when a reset drops its timer; a delivery made
    # since may have its id, so its timer its key: the old one finishing must not delete that row
    from simulator.core.state import StateFile

    clock = Clock(T0)
    state = StateFile(str(tmp_path / "state.db"))
    try:
        timers = Timers(clock, state)
        timers.at(T0, "t", "attempt", key="webhook:d1")
        [old] = timers._take_due(None)
        timers.reset()
        timers.at(T0, "t", "attempt", key="webhook:d1")
        [new] = timers._take_due(None)        # on the wire too
        timers._finished(old)
        assert [key for key, _, _ in state.rows("timers")] == ["webhook:d1"]
        timers._finished(new)
        assert list(state.rows("timers")) == []
    finally:
        state.close()


def test_timers_of_another_tenant_do_not_run_on_a_tenant_advance():
    clock = Clock(T0)
    timers = Timers(clock)
    ran = []
    timers.register("note", lambda tenant: ran.append(tenant))
    timers.at(T0 + timedelta(hours=1), "a", "note")
    timers.at(T0 + timedelta(hours=1), "b", "note")
    timers.advance(timedelta(hours=2), "a")
    assert ran == ["a"]


def test_the_dispatcher_outlives_a_pass_that_failed():
    # a pass can fail outside any handler (the state file refusing the write that ends a timer):
    # the background dispatcher must go on running what falls due after it
    clock = Clock(T0)
    timers = Timers(clock)
    ran, second = [], threading.Event()
    timers.register("note", lambda tenant, n: (ran.append(n), n == 2 and second.set()))
    finished, failures = timers._finished, []

    def fails_once(timer):
        if not failures:
            failures.append(timer.key)
            raise OSError("No space left on device")
        finished(timer)

    timers._finished = fails_once
    dispatcher = Dispatcher(timers, interval=0.01, gather=0)
    dispatcher.start()
    try:
        timers.at(T0, "t", "note", {"n": 1})
        deadline = time.monotonic() + 10
        while not failures and time.monotonic() < deadline:
            time.sleep(0.01)
        timers.at(T0, "t", "note", {"n": 2})
        assert second.wait(10)
        assert ran == [1, 2] and dispatcher.is_alive()
    finally:
        dispatcher.stop()
        dispatcher.join(5)


def test_a_finished_idempotency_key_keeps_its_answer_compressed_and_replays_it_byte_for_byte():
    # a client may send a key with every payment, and a frozen clock never lets one expire: a
    # finished key is kept small (no Event, the answer compressed), and replays what was answered
    ledger = IdempotencyKeys()
    answers = {}
    for n in range(50):
        scope = ("checkout", "sk_test", "/checkout/payments", f"key-{n}")
        body = json.dumps({"id": f"pay_{n:026d}", "amount": 1000 + n, "currency": "EUR", "approved": True,
                           "status": "Captured", "response_code": "10000", "response_summary": "Approved",
                           "source": {"type": "card", "scheme": "Visa", "last4": "4242", "bin": "424242"},
                           "_links": {"self": {"href": f"http://127.0.0.1:8080/checkout/payments/pay_{n:026d}"}},
                           }).encode()
        assert ledger.begin(scope, T0, timedelta(hours=24))[0] == NEW
        ledger.finish(scope, (201, body))
        answers[scope] = body
    # fewer than a batch: nothing was handed to the compressor thread yet, and each replays as is
    for scope, body in answers.items():
        assert ledger._kept(scope).endswith(body)
        assert ledger.begin(scope, T0 + timedelta(hours=1), timedelta(hours=24)) == (REPLAY, (201, body))
    ledger.compact()
    for scope, body in answers.items():
        kept = ledger._kept(scope)
        assert type(kept) is bytes and len(kept) < len(body) / 2
        assert ledger.begin(scope, T0 + timedelta(hours=1), timedelta(hours=24)) == (REPLAY, (201, body))
    scope = next(iter(answers))
    assert ledger.begin(scope, T0 + timedelta(hours=25), timedelta(hours=24))[0] == NEW   # expired


def finish_keys(ledger: IdempotencyKeys, count: int) -> dict[tuple, bytes]:
    """``count`` keys claimed and finished with a payment's answer each: scope -> answer body."""
    answers = {}
    for n in range(count):
        scope = ("checkout", "sk_test", "/checkout/payments", f"key-{n}")
        body = json.dumps({"id": f"pay_{n:026d}", "status": "Captured", "approved": True,
                           "response_summary": "Approved", "source": {"scheme": "Visa", "last4": "4242"}}).encode()
        ledger.begin(scope, T0, timedelta(hours=24))
        ledger.finish(scope, (201, body))
        answers[scope] = body
    return answers


def test_a_request_finishing_an_idempotency_key_leaves_its_compression_to_the_compressor_thread(monkeypatch):
    # zlib gives up the interpreter lock while it deflates: on a request thread that is a wait
    # behind every other request to get it back, and a batch compressed body by body waits as often
    from simulator.core import idempotency
    deflated = []   # (thread, bytes given)
    real = idempotency.zlib.compress
    monkeypatch.setattr(idempotency.zlib, "compress",
                        lambda data, *a: deflated.append((threading.current_thread(), len(data))) or real(data, *a))
    ledger = IdempotencyKeys()
    answers = finish_keys(ledger, 200)

    def in_blocks():
        return [scope for scope, body in answers.items() if len(ledger._kept(scope)) < len(body) / 2]
    # once the compressor thread is done (nothing handed over and not taken yet, nothing taken and
    # not in blocks yet): what waits is less than a batch, the rest is in blocks
    def settled():
        with ledger._lock:
            return not ledger._handed_over and len(in_blocks()) == 200 - len(ledger._waiting)
    deadline = time.monotonic() + 10
    while not settled() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(in_blocks()) == 200 - len(ledger._waiting) and len(ledger._waiting) < 64
    assert {thread.name for thread, _ in deflated} == {"sandbox-compressor"}
    # one call a block, a block of at most 64 bodies
    blocks = ledger._blocks[("checkout", "sk_test", "/checkout/payments")]
    assert len(deflated) == len(blocks) and sum(count for _, count in blocks.values()) == len(in_blocks())
    assert all(count <= 64 for _, count in blocks.values())
    assert sum(size for _, size in deflated) == sum(len(answers[scope]) for scope in in_blocks())
    for scope, body in answers.items():
        assert ledger.begin(scope, T0, timedelta(hours=24)) == (REPLAY, (201, body))


def test_an_idempotency_block_goes_once_no_key_points_into_it():
    ledger = IdempotencyKeys()
    group = ("checkout", "sk_test", "/checkout/payments")
    for n in range(3):
        ledger.begin((*group, f"key-{n}"), T0, timedelta(hours=1))
        ledger.finish((*group, f"key-{n}"), (201, b'{"id": "pay_%d"}' % n))
    ledger.compact()
    assert [count for _, count in ledger._blocks[group].values()] == [3]
    ledger.abort((*group, "key-0"))
    # an expired key claimed again lets go of its place in the block
    assert ledger.begin((*group, "key-1"), T0 + timedelta(hours=2), timedelta(hours=1))[0] == NEW
    assert [count for _, count in ledger._blocks[group].values()] == [1]
    assert ledger.begin((*group, "key-2"), T0, timedelta(hours=1)) == (REPLAY, (201, b'{"id": "pay_2"}'))
    ledger.abort((*group, "key-2"))
    assert ledger._blocks[group] == {}
    ledger.finish((*group, "key-1"), (201, b'{"id": "pay_1 again"}'))
    ledger.compact()
    ledger.reset("sk_test")
    assert ledger._blocks == {} and ledger._groups == {}


def test_kept_idempotency_keys_share_their_scope_and_keep_nothing_but_their_key_and_one_bytes_object():
    # each request spells its tenant and path afresh and reads the clock into a new datetime: kept
    # for every key, those copies were ~200 B a key, and a tuple of the scope and one of the answer
    # ~150 B more
    ledger = IdempotencyKeys()
    fingerprints = [None, "a" * 64]
    for n in range(20):
        scope = ("checkout", "".join(["sk_", "t" * 30]), "".join(["/checkout/", "payments"]), f"key-{n}")
        assert ledger.begin(scope, T0 + timedelta(seconds=n), timedelta(hours=24), fingerprints[n % 2])[0] == NEW
        ledger.finish(scope, (201 + n % 2, b'{"id": "pay_%d"}' % n))
    assert list(ledger._groups) == [("checkout", "sk_" + "t" * 30, "/checkout/payments")]
    kept = ledger._groups[("checkout", "sk_" + "t" * 30, "/checkout/payments")]
    assert list(kept) == [f"key-{n}" for n in range(20)] and all(type(v) is bytes for v in kept.values())
    for n in range(20):
        scope = ("checkout", "sk_" + "t" * 30, "/checkout/payments", f"key-{n}")
        assert ledger.fingerprint(scope) == fingerprints[n % 2]
        assert ledger.begin(scope, T0 + timedelta(hours=24, seconds=n), timedelta(hours=24)) == \
            (REPLAY, (201 + n % 2, b'{"id": "pay_%d"}' % n))
        # its own time, to the microsecond: one microsecond past its TTL it is a new key
        assert ledger.begin(scope, T0 + timedelta(hours=24, seconds=n, microseconds=1), timedelta(hours=24))[0] == NEW


def test_idempotency_keys_read_back_from_a_state_file_are_kept_compressed_and_replay_the_same(tmp_path):
    path = str(tmp_path / "state.db")
    state = StateFile(path)
    ledger = IdempotencyKeys(state)
    answers = finish_keys(ledger, 20)
    state.close()
    state = StateFile(path)
    try:
        ledger = IdempotencyKeys(state)
        for scope, body in answers.items():
            assert type(ledger._kept(scope)) is bytes and len(ledger._kept(scope)) < len(body)
            assert ledger.begin(scope, T0, timedelta(hours=24)) == (REPLAY, (201, body))
    finally:
        state.close()


def test_ids_repeat_for_a_seed_and_differ_across_seeds():
    a, b, c = IdFactory(7), IdFactory(7), IdFactory(8)
    seq = lambda f: [f.prefixed("pay_"), f.uuid4(), f.digits(6)]
    assert seq(a) == seq(b) != seq(c)


def test_ids_of_a_seed_stay_spelled_as_they_were():
    # a seed's ids are part of the wire: recorded runs and state files must read the same on
    # every version, so each alphabet's spelling is pinned (least significant digit first)
    f = IdFactory(7)
    urlsafe = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
    assert [f.prefixed("pay_"), f.prefixed("tx_", 24, ALNUM), f.token(29, urlsafe), f.token(64, HEX),
            f.token(27, ALNUM), f.uuid4(), f.digits(6), f.digits(23), f.integer(3, 9), f.token(5),
            f.token(1, ALNUM)] == [
        "pay_6b3v5d33rmc6g4ycz22vgvzvnc", "tx_2AkbP7DljTT8mGRa6TpfmFR7", "Hf6k53B0U5y5H6ULObcfT3grigNRW",
        "c2dc1efcec4de448ad72b8613bf92c0d4fa9a25211f2aac5596e931a9deae2a1", "ufopvX4DPjJgC6eD6kXvqt3eNnW",
        "0ee9ef9c-9369-4e27-bab5-2cdde432fa9a", "329918", "66502752373343123060100", 4, "bjvqy", "M"]


def test_probability_draws_do_not_shift_ids():
    a, b = IdFactory(3), IdFactory(3)
    b.draw()
    assert a.prefixed("x_") == b.prefixed("x_")


@pytest.mark.parametrize("number,scheme", [("4242424242424242", "Visa"), ("5436031030606378", "Mastercard"),
                                           ("2223000010479399", "Mastercard"), ("378282246310005", "American Express"),
                                           ("6011111111111117", "Discover"), ("3530111333300000", "JCB")])
def test_schemes(number, scheme):
    assert cards.luhn_ok(number) and cards.scheme(number) == scheme


def test_masking_keeps_six_and_four():
    assert cards.mask("4242424242424242") == "424242******4242"
    assert cards.mask_text('{"number": "4242424242424242"}') == '{"number": "424242******4242"}'
    assert cards.mask_json({"n": 4242424242424242, "l": ["5436031030606378"]}) == {
        "n": "424242******4242", "l": ["543603******6378"]}


def test_expiry_is_end_of_month():
    assert not cards.expired(3, 2026, datetime(2026, 3, 31, 23, 59, tzinfo=timezone.utc))
    assert cards.expired(3, 2026, datetime(2026, 4, 1, tzinfo=timezone.utc))


@pytest.mark.parametrize("value,currency,minor", [("10.00", "EUR", 1000), ("10", "EUR", 1000), (12.5, "EUR", 1250),
                                                  ("1000", "JPY", 1000), ("1.234", "KWD", 1234)])
def test_money(value, currency, minor):
    assert money.to_minor(value, currency) == minor
    assert money.to_minor(money.to_major(minor, currency), currency) == minor


@pytest.mark.parametrize("value", ["10.001", "abc", "NaN", True, "1e400x"])
def test_money_rejects(value):
    with pytest.raises(ValueError):
        money.to_minor(value, "EUR")


def test_journal_is_bounded_and_masked():
    journal = Journal(limit=3)
    for i in range(5):
        journal.record(provider="p", tenant="t", method="POST", path=f"/{i}", status=200, at="x", rules=[],
                       request_body=b'{"number": "4242424242424242"}', request_type="application/json",
                       response_body=b"card=4242424242424242", response_type="text/plain")
    entries = journal.entries()
    assert [e["path"] for e in entries] == ["/2", "/3", "/4"]
    assert entries[0]["request"] == {"number": "424242******4242"}
    assert entries[0]["response"] == "card=424242******4242"


def test_mask_bytes_masks_what_mask_text_masks():
    # the journal masks bodies as bytes; it must hide exactly what the text masking hides
    rng = random.Random(11)
    parts = ["4242424242424242", "4242 4242 4242 4242", "4242-4242-4242-4242", "cvv", "CVV2", "card_cvv",
             "cardcvc", "security_code", "securityCode", '"', ":", "=", " ", ",", "}", "x", "123", "&", "+", "-",
             "0", "cid", "csc", "cvv_check", "12345678901", "9",
             # whole quoted runs take the one-substitution path; their neighbours may not
             '"123456789012"', '"4242424242424242"', '"1234567890123456789012"',
             # UUIDs whose digits line up across their dashes, and ones that only look like them
             "c19c5ead-dff3-4d12-8345-678901234f4b", "00000000-1234-5678-9012-345678901234", "4242-4242-4242",
             # any ASCII whitespace between the digits, as a card number parser strips it
             "\t", "\n", "  ", "\x0b", "\x1f",
             # hex ids and hashes: their digits are not a card number, unless a letter or digit touches them
             "abcdef4242424242424242abcdef0123456789", "0dd2798336974afe0dd2798336974afe"]
    for _ in range(5000):
        text = "".join(rng.choice(parts) for _ in range(rng.randint(1, 14)))
        assert cards.mask_bytes(text.encode())[0].decode() == cards.mask_text(text), text


def test_uuids_found_from_their_first_dash_are_the_ones_the_uuid_pattern_finds():
    # the search jumps to a dash and looks behind it for the UUID's first group: UUIDs side by side,
    # dashes in a row, too-long groups and the body's edges included
    uuid = cards._NO_HEX_BEFORE + "-".join(cards._HEX_GROUPS) + cards._NO_HEX_AFTER   # read from its start
    uuid_in_text, uuid_in_bytes = re.compile(uuid), re.compile(uuid.encode())
    rng = random.Random(5)
    parts = ["c19c5ead-dff3-4d12-8345-678901234f4b", "-", "a", "0", "1234", "-dff3-4d12-8345-", "x", '"',
             "ABCDEF12", "678901234f4b", "-aaaa", "aaaa-", "\u00e9"]
    for _ in range(20000):
        text = "".join(rng.choice(parts) for _ in range(rng.randint(0, 12)))
        assert cards._uuids_as_letters(text, cards._UUID_AT_DASH_IN_TEXT, cards._AS_LETTERS) \
            == uuid_in_text.sub(cards._AS_LETTERS, text), text
        raw = text.encode()
        assert cards._without_uuids(raw) == uuid_in_bytes.sub(cards._AS_LETTER_BYTES, raw), raw


def test_security_code_names_found_in_one_scan_are_the_ones_four_searches_find():
    # the scan finds every hint at its "c", overlapping ones and "security" (two characters in) too
    def four_searches(raw: bytes) -> list[tuple[int, int]]:
        lowered, found = raw.lower(), []
        for hint in (b"cv", b"cid", b"csc", b"security"):
            at = lowered.find(hint)
            while at >= 0:
                for start in (at - 5, at - 4, at):
                    m = cards._CVV_IN_BYTES.match(raw, start) if start >= 0 else None
                    if m is not None:
                        found.append(m)
                        break
                at = lowered.find(hint, at + 1)
        found.sort(key=lambda m: m.start())
        kept, end = [], -1
        for m in found:
            if m.start() >= end:
                kept.append(m.span())
                end = m.end()
        return kept

    rng = random.Random(11)
    parts = ["cv", "cvv", "CVC2", "cid", "csc", "cscv", "security", "SECURITY_code", "se", "curity", "card_",
             "card", "c", "s", '"', ":", "=", " ", "12a", "x", ",", "{", "_check"]
    for _ in range(20000):
        raw = "".join(rng.choice(parts) for _ in range(rng.randint(0, 12))).encode()
        assert [m.span() for m in cards._code_matches(raw)] == four_searches(raw), raw
        assert cards.needs_masking(raw) == bool(four_searches(raw)), raw


def test_uuid_digits_are_not_a_card_number_but_a_card_number_beside_a_uuid_is():
    # about one random UUID in thirty has twelve digits across its dashes (every Gr4vy id is one)
    ids = {"id": "c19c5ead-dff3-4d12-8345-678901234f4b", "buyer_id": "00000000-1234-5678-9012-345678901234"}
    raw = json.dumps(ids).encode()
    assert cards.mask_bytes(raw) == (raw, True) and cards.mask_text(raw.decode()) == raw.decode()
    assert cards.mask_json(ids) == ids
    beside = "4242 4242 4242 4242 c19c5ead-dff3-4d12-8345-678901234f4b"
    assert cards.mask_text(beside) == "4242 42** **** 4242 c19c5ead-dff3-4d12-8345-678901234f4b"
    # not a UUID (a hex group too long, or a run leading into it): its digits are masked as before
    assert "*" in cards.mask_text("4242424242424242-c19c5ead-dff3-4d12-8345-678901234f4b")
    assert "*" in cards.mask_text("c19c5eadd-dff3-4d12-8345-678901234f4b")
    journal = Journal()
    journal.record(provider="p", tenant="t", method="GET", path=f"/transactions/{ids['id']}", status=200, at="x",
                   rules=[], request_body=b"", request_type=None, response_body=raw, response_type="application/json")
    entry = journal.entries()[0]
    assert entry["response"] == ids and entry["path"] == f"/transactions/{ids['id']}"


def test_hex_ids_and_hashes_are_not_card_numbers_but_a_card_number_beside_one_is():
    # one random 64-character hex string in about fifteen has twelve digits in a row (a Checkout
    # fingerprint, a Bank 131 token): masked, the dashboard's link to the object would not resolve
    token = "0dd2798336974afe" + "123456789012345" + "abcdef0123456789abcdef0123456789abcdef0123456789a"
    body = json.dumps({"recurrent_token": {"token": token}, "fingerprint": token.upper()}).encode()
    assert cards.mask_bytes(body) == (body, True) and cards.mask_text(body.decode()) == body.decode()
    assert cards.mask_json(json.loads(body)) == json.loads(body)
    # a letter or a digit next to the hex run, or separators among the digits: not an id, masked
    assert cards.mask_text("x" + token) == "x0dd2798336974afe123456*****2345" + token[31:]
    assert "*" in cards.mask_text("0dd2798336974afe 4242 4242 4242 4242 abcdef0123456789abcdef")
    assert "*" in cards.mask_text("4242424242424242")   # digits only: no letter, no id
    # a hex run longer than the look either side of the digits (an encoded blob) is an id too; a
    # card number beside one, apart by a space, is not part of it
    blob = "ab" * 200 + "123456789012345" + "cd" * 200
    assert cards.mask_text(blob) == blob and cards.mask_bytes(blob.encode())[0] == blob.encode()
    assert cards.mask_text(blob + " 4242424242424242").endswith(" 424242******4242")


@pytest.mark.parametrize("raw, shown", [
    # a card number as a JSON integer and a numeric code keep their JSON shape, masked
    (b'{"number": 4242424242424242, "cvv": 100}', {"number": "424242******4242", "cvv": "***"}),
    # digits spelled as JSON escapes are decoded before masking
    (b'{"number": "42424\\u003424242\\u00344242"}', {"number": "424244******4242"}),
    (b'{"note": "card \\u0034242 4242 4242 4242", "ok": "\\u00e9"}', {"note": "card 4242 42** **** 4242", "ok": "\u00e9"}),
    (b'{"scheme_id": "569674995756252", "cvv_check": "Y"}', {"scheme_id": "569674*****6252", "cvv_check": "Y"}),
    (b'{"amount": 1000}', {"amount": 1000}),
    # whatever whitespace a card number parser strips between the groups, spelled as a JSON escape
    # (a no-break space, a tab, an em space), written as UTF-8, or doubled
    (b'{"number": "4111\\u00a01111\\u00a01111\\u00a01111"}', {"number": "4111\u00a011**\u00a0****\u00a01111"}),
    (b'{"number": "4111\\t1111\\n1111\\r1111"}', {"number": "4111\t11**\n****\r1111"}),
    ('{"number": "4111\u20031111\u00a01111 1111"}'.encode(), {"number": "4111\u200311**\u00a0**** 1111"}),
    (b'{"number": "4111  1111   1111    1111"}', {"number": "4111  11**   ****    1111"}),
    # a card number spelled as a JSON float reads 4111111111111111.0
    (b'{"metadata": {"n": 4.111111111111111E15}}', {"metadata": {"n": "411111******1111.0"}}),
    (b'{"amount": 10.5, "rate": 0.333333333333333}', {"amount": 10.5, "rate": 0.333333333333333}),
    # JSON in UTF-16 or UTF-32, which json.loads (so the provider) reads: NUL bytes between the digits
    *[('{"number": "4242424242424242", "cvv": "100"}'.encode(encoding),
       {"number": "424242******4242", "cvv": "***"}) for encoding in ("utf-16", "utf-16-le", "utf-16-be", "utf-32")],
    # a card number as a key, written as is or beside an escape that sends the body to the decoded path
    (b'{"metadata": {"4111111111111111": "v"}}', {"metadata": {"411111******1111": "v"}}),
    (b'{"metadata": {"4111111111111111": "caf\u00e9"}}', {"metadata": {"411111******1111": "caf\u00e9"}}),
])
def test_journal_masks_every_spelling(raw, shown):
    journal = Journal()
    journal.record(provider="p", tenant="t", method="POST", path="/x", status=200, at="x", rules=[],
                   request_body=raw, request_type="application/json", response_body=b"", response_type=None)
    assert journal.entries()[0]["request"] == shown


def test_journal_masks_a_repeated_body_once_and_keeps_one_copy_of_it(monkeypatch):
    # a client polling one object gets the same bytes each time: the masking walk runs once, and
    # the memo behind it holds no body, so no card number, only what the journal keeps anyway
    walks = []
    monkeypatch.setattr(journal_module, "mask_bytes", lambda raw: walks.append(raw) or cards.mask_bytes(raw))
    journal = Journal()
    answer = b'{"id": "pay_1", "scheme_id": "569674995756252", "note": "4242424242424242"}'
    for _ in range(3):
        journal.record(provider="p", tenant="t", method="GET", path="/pay/pay_1", status=200, at="x", rules=[],
                       request_body=b"", request_type=None, response_body=bytes(answer),
                       response_type="application/json")
    assert len(walks) == 1
    assert [e["response"]["note"] for e in journal.entries()] == ["424242******4242"] * 3
    assert b"4242424242424242" not in repr(journal_module._seen).encode()
    kept = [entry[1][9] for entry in journal._entries]
    assert kept[0] is kept[1] is kept[2]


def test_journal_entries_mentioning_an_id():
    journal = Journal()
    bodies = [("/pay/pay_1", b"", b'{"id": "pay_1"}'), ("/other", b'{"ref": "pay_1"}', b"{}"),
              ("/other", b'{"number": "4242424242424242", "ref": "pay_1"}', b""), ("/other", b"{}", b'{"id": "pay_2"}')]
    for path, req, resp in bodies:
        journal.record(provider="p", tenant="t", method="POST", path=path, status=200, at="x", rules=[],
                       request_body=req, request_type="application/json", response_body=resp,
                       response_type="application/json")
    found = journal.entries(mentioning={"pay_1"})
    assert [e["seq"] for e in found] == [1, 2, 3]
    assert found[2]["request"] == {"number": "424242******4242", "ref": "pay_1"}
    assert [e["seq"] for e in journal.entries(mentioning={"pay_2", "nothing"})] == [4]


def test_iso_z():
    assert iso_z(T0, 7) == "2026-01-01T00:00:00.0000000Z"
    assert iso_z(T0) == "2026-01-01T00:00:00Z"
    later = datetime(2026, 1, 1, 2, 30, 5, 123456, tzinfo=timezone(timedelta(hours=3)))
    assert [iso_z(later, d) for d in (0, 3, 6, 7, 9)] == [
        "2025-12-31T23:30:05Z", "2025-12-31T23:30:05.123Z", "2025-12-31T23:30:05.123456Z",
        "2025-12-31T23:30:05.1234560Z", "2025-12-31T23:30:05.123456000Z"]
    # the same second twice (its text is kept), before the epoch, at the clock's far end
    assert iso_z(later.replace(microsecond=7), 6) == "2025-12-31T23:30:05.000007Z"
    assert iso_z(datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc), 4) == "1969-12-31T23:59:59.9999Z"
    assert iso_z(datetime(8999, 12, 31, 23, 59, 59, 500000, tzinfo=timezone.utc), 1) == "8999-12-31T23:59:59.5Z"


def test_public_drops_bookkeeping_keys_and_keeps_key_order():
    from simulator.core.store import public
    rng = random.Random(7)
    names = ["id", "_seq", "status", "_settled", "amount", "__x", "type", "_"]
    for _ in range(2000):   # few layouts, many objects: the layout memo is hit and missed
        obj = {k: rng.random() for k in rng.sample(names, rng.randint(0, len(names)))}
        shown = public(obj)
        assert list(shown.items()) == [(k, v) for k, v in obj.items() if not k.startswith("_")]
        assert shown is not obj


@pytest.mark.parametrize("worker", ["gw0", "gw1"])
def test_free_ports_are_ones_no_other_test_process_is_handed(monkeypatch, worker):
    # a port the kernel hands out for bind(0) may go to another worker's next server before the
    # server meant to have it binds it; the ports below the ephemeral range are never handed out
    import simulator.testing as testing

    if testing._ephemeral_low() < 22_000:
        pytest.skip("no room below this machine's ephemeral port range")
    monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
    block = 20_000 + 1_000 * int(worker[2:])
    ports = [testing.free_port() for _ in range(3)]
    assert all(block <= p < block + 1_000 for p in ports) and len(set(ports)) == 3
    with socket.socket() as busy:   # a port in use is passed over
        busy.bind(("127.0.0.1", block + 10))
        monkeypatch.setattr(testing, "_next_port", block + 10)
        assert testing.free_port() == block + 11


def test_the_test_receiver_takes_a_burst_of_connections_without_accepting_one():
    # the sender opens tens of connections at once; the kernel drops the ones beyond the listen
    # backlog and retries them a second later, so a receiver with socketserver's backlog of 5 made
    # a test waiting for twenty webhooks wait two seconds
    import selectors
    from http.server import BaseHTTPRequestHandler

    from simulator.testing import ReceiverServer

    server = ReceiverServer(("127.0.0.1", 0), BaseHTTPRequestHandler)   # never serves: nothing accepts
    clients = [socket.socket() for _ in range(40)]
    try:
        with selectors.DefaultSelector() as sel:
            for client in clients:
                client.setblocking(False)
                client.connect_ex(server.server_address)
                sel.register(client, selectors.EVENT_WRITE)
            connected = set()
            deadline = time.monotonic() + 0.8   # under the kernel's first SYN retry
            while len(connected) < len(clients) and (left := deadline - time.monotonic()) > 0:
                for key, _ in sel.select(left):
                    if key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                        connected.add(key.fileobj)
                    sel.unregister(key.fileobj)
        assert len(connected) == len(clients)
    finally:
        for client in clients:
            client.close()
        server.server_close()
