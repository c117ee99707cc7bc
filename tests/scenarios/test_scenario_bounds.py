"""Values a document can spell but nothing downstream can carry are refused at load, with the line.

Each of these was once accepted, or crashed the load, and then failed somewhere else: a 500 from
PUT or a traceback from run.py (a duration past what a timedelta holds), a 500 on every matching
payment (a delay that lands past year 9999), a 500 from the dashboard (a lone surrogate in a
name), invalid JSON from GET /_sandbox/scenarios (NaN).
"""
import json
import subprocess
import sys

import pytest
import requests

from scenario_helpers import AUTH, MANUAL, ROOT
from simulator.testing import SandboxServer

CARD = {"type": "card", "number": "4242424242424242", "expiry_month": 12, "expiry_year": 2030, "cvv": "100"}


def rule_doc(extra="", effect="{http_error: 503}"):
    """A one-rule document; ``extra`` lines start on line 5."""
    return f"name: s\nrules:\n  - name: r\n    provider: checkout\n{extra}    effect: {effect}\n"


def strict_json(text):
    """JSON as the RFC has it: NaN and Infinity are not JSON, whatever Python's reader allows."""
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")
    return json.loads(text, parse_constant=refuse)


def assert_refused(server, doc, line, reason, content_type="application/yaml"):
    before = server.admin("GET", "/scenarios").json()
    resp = server.admin("PUT", "/scenarios", data=doc, headers={"Content-Type": content_type})
    assert resp.status_code == 400, resp.text
    err = resp.json()
    assert err["source"] == "<request body>" and err["line"] == line, err
    assert reason in err["error"], err
    # nothing was loaded, and every reader of the scenarios still works
    listing = server.admin("GET", "/scenarios")
    assert strict_json(listing.text) == before
    assert server.admin("GET", "/").status_code == 200


def run_cli(*args):
    return subprocess.run([sys.executable, "run.py", "--port", "0", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


# -- durations ------------------------------------------------------------------------------

TOO_LONG = [
    # beyond what a timedelta holds: the load itself raised OverflowError
    ("after, beyond a timedelta", rule_doc("    after: P99999999999D\n"), 5, "after: must be at most P36525D"),
    ("after, seconds read as infinity", rule_doc(f"    after: PT{'9' * 400}S\n"), 5, "after: must be at most P36525D"),
    ("webhook delay, beyond a timedelta", rule_doc(effect="{webhook: {delay: P1000000000D}}"), 5,
     "webhook.delay: must be at most P36525D"),
    # a timedelta, but past year 9999 from today's clock: accepted, then every matching payment 500ed
    ("webhook delay, past year 9999", rule_doc(effect="{webhook: {delay: P3000000D}}"), 5,
     "webhook.delay: must be at most P36525D"),
    ("after, past year 9999", rule_doc("    after: P3000000D\n"), 5, "after: must be at most P36525D"),
    ("after, one day past the bound", rule_doc("    after: P36526D\n"), 5, "after: must be at most P36525D"),
]


@pytest.mark.parametrize("kind,doc,line,reason", TOO_LONG, ids=[t[0] for t in TOO_LONG])
def test_durations_beyond_a_century_are_refused_with_the_line(server, kind, doc, line, reason):
    assert_refused(server, doc, line, reason)


@pytest.mark.parametrize("kind", ["after, beyond a timedelta", "webhook delay, past year 9999"])
def test_run_py_refuses_a_too_long_duration_in_one_line(tmp_path, kind):
    _, doc, line, reason = next(t for t in TOO_LONG if t[0] == kind)
    path = tmp_path / "long.yaml"
    path.write_text(doc)
    result = run_cli("--scenario", str(path))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"psp-sandbox: {path}:{line}: ") and reason in lines[0]
    assert result.stdout == ""


def test_a_century_is_accepted_and_payments_still_work(receiver):
    config = {**MANUAL, "providers": {"checkout": {"webhook_url": receiver.url + "/cko"}}}
    with SandboxServer(config) as srv:
        doc = "name: later\nrules:\n  - name: later\n    provider: checkout\n    after: P36525D\n    effect: {latency_ms: 1}\n"
        assert srv.admin("PUT", "/scenarios", data=doc).status_code == 200, "after at the bound"
        doc = "name: late\nrules:\n  - name: late\n    provider: checkout\n    effect: {webhook: {delay: P36525D}}\n"
        assert srv.admin("PUT", "/scenarios", data=doc).status_code == 200, "delay at the bound"
        resp = requests.post(srv.url + "/checkout/payments", headers=AUTH, timeout=10,
                             json={"source": CARD, "amount": 100, "currency": "EUR"})
        assert resp.status_code == 201, resp.text
        delayed = [d for d in srv.webhooks() if d["rules"] == ["late"]]
        # 36,525 days from 2026-01-01: 2100 is no leap year, so one day past the calendar century
        assert delayed and all(d["next_attempt_at"] == "2126-01-02T00:00:00.000Z" for d in delayed), delayed


@pytest.mark.parametrize("doc,line,reason", [
    (rule_doc("    after: '0001-01-01T00:00:00+14:00'\n"), 5, "after"),
    ("name: s\nclock: {start: '0001-01-01T00:00:00+14:00'}\nrules: []\n", 2, "clock.start: not a timestamp in years 1-9999"),
], ids=["after", "clock start"])
def test_timestamps_that_leave_years_1_to_9999_in_utc_are_refused(server, doc, line, reason):
    assert_refused(server, doc, line, reason)


# -- counts ---------------------------------------------------------------------------------

COUNTS = [
    ("nth above a billion", rule_doc("    nth: 1000000001\n"), 5, "nth: must be 1 or more (1-based), at most 1000000000"),
    ("times above a billion", rule_doc("    times: 99999999999999999999\n"), 5, "times: must be 1 or more, at most"),
    ("webhook fail above a billion", rule_doc(effect="{webhook: {fail: 99999999999999999999}}"), 5,
     "webhook.fail: must be 1 to 1000000000"),
    ("webhook duplicate above 100", rule_doc(effect="{webhook: {duplicate: 100000000}}"), 5,
     "webhook.duplicate: must be 1 to 100"),
    ("webhook duplicate negative", rule_doc(effect="{webhook: {duplicate: -1}}"), 5, "webhook.duplicate: must be 1 to 100"),
    ("nth true", rule_doc("    nth: true\n"), 5, "nth: must be an integer"),
    ("latency_ms true", rule_doc(effect="{latency_ms: true}"), 5, "latency_ms: must be an integer"),
    ("http_error true", rule_doc(effect="{http_error: true}"), 5, "http_error: must be a status"),
    ("probability true", rule_doc("    probability: true\n"), 5, "probability: must be a number"),
    # int() refuses more than 4,300 digits: the YAML reader raised a bare ValueError (500)
    ("nth of 5,000 digits", rule_doc(f"    nth: {'9' * 5000}\n"), 5, "rules.0.nth: a number of more than 4300 digits"),
    ("a date that does not exist", "name: s\ndescription: 2026-02-30\nrules: []\n", 2, "description: not a date"),
]


@pytest.mark.parametrize("kind,doc,line,reason", COUNTS, ids=[c[0] for c in COUNTS])
def test_counts_are_bounded_integers(server, kind, doc, line, reason):
    assert_refused(server, doc, line, reason)


def test_run_py_refuses_an_unreadable_number_in_one_line(tmp_path):
    path = tmp_path / "digits.yaml"
    path.write_text(rule_doc(f"    nth: {'9' * 5000}\n"))
    result = run_cli("--scenario", str(path))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"psp-sandbox: {path}:5: rules.0.nth: "), result.stderr


def test_a_hundred_duplicates_still_load(server):
    assert server.admin("PUT", "/scenarios", data=rule_doc(effect="{webhook: {duplicate: 100}}")).status_code == 200


# -- NaN and infinity -----------------------------------------------------------------------

NOT_FINITE = [
    ("probability .nan", rule_doc("    probability: .nan\n"), 5, "probability: must be a finite number"),
    ("probability .inf", rule_doc("    probability: .inf\n"), 5, "probability: must be a finite number"),
    ("match value .nan", rule_doc("    match: {amount: .nan}\n"), 5, "match.amount: must be a finite number"),
    ("match operand -.inf", rule_doc("    match: {amount: {gte: -.inf}}\n"), 5, "match.amount.gte: must be a finite number"),
    ("match in .nan", rule_doc("    match: {amount: {in: [1, .nan]}}\n"), 5, "match.amount.in.1: must be a finite number"),
    ("http_error body .nan", rule_doc(effect="{http_error: {status: 500, body: {a: .nan}}}"), 5,
     "http_error.body.a: must be a finite number"),
]


@pytest.mark.parametrize("kind,doc,line,reason", NOT_FINITE, ids=[n[0] for n in NOT_FINITE])
def test_nan_and_infinity_are_refused_so_the_listing_stays_json(server, kind, doc, line, reason):
    assert_refused(server, doc, line, reason)


def test_nan_in_a_json_document_is_refused(server):
    # Python's own JSON writer spells NaN and a JSON document read as YAML takes it as text
    doc = json.dumps({"name": "s", "rules": [{"name": "r", "probability": float("nan"), "effect": {"latency_ms": 0}}]})
    assert_refused(server, doc, 1, "probability: must be", content_type="application/json")


# -- Unicode --------------------------------------------------------------------------------

LONE = [
    ("scenario name, JSON", b'{"name": "x\\ud800", "rules": [{"name": "r", "effect": {"latency_ms": 0}}]}',
     "application/json", 1, "name: invalid Unicode"),
    ("rule name and path, JSON", b'{"name": "y",\n "rules": [{"name": "r\\udfff", "path": "/\\ud800",\n'
     b' "effect": {"latency_ms": 0}}]}', "application/json", 2, "rules.0.name: invalid Unicode"),
    ("reversed pair, JSON", b'{"name": "x\\udca9\\ud83d", "rules": []}', "application/json", 1, "name: invalid Unicode"),
    ("description, YAML", b'name: x\ndescription: "a\\ud800"\nrules: []\n', "application/yaml", 2,
     "description: invalid Unicode"),
    ("match key, YAML", b'name: x\nrules:\n  - name: r\n    match: {"a\\udfff": 1}\n    effect: {latency_ms: 0}\n',
     "application/yaml", 4, "rules.0.match.a\\udfff: invalid Unicode"),
    ("http_error body, YAML", b'name: x\nrules:\n  - name: r\n    effect:\n      http_error: {body: {m: "\\U0000d800"}}\n',
     "application/yaml", 5, "http_error.body.m: invalid Unicode"),
]


@pytest.mark.parametrize("kind,doc,content_type,line,reason", LONE, ids=[u[0] for u in LONE])
def test_lone_surrogates_are_refused_before_anything_is_loaded(server, kind, doc, content_type, line, reason):
    assert_refused(server, doc, line, reason, content_type=content_type)


def test_run_py_refuses_a_lone_surrogate_in_one_line(tmp_path):
    path = tmp_path / "lone.yaml"
    path.write_bytes(b'name: "x\\ud800"\nrules: []\n')
    result = run_cli("--scenario", str(path))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"psp-sandbox: {path}:1: name: invalid Unicode"), result.stderr


def test_escaped_surrogate_pairs_are_the_character_they_spell(server):
    # json.dumps escapes non-ASCII as UTF-16 pairs by default; YAML alone reads them as two lone halves
    doc = json.dumps({"name": "renewal \U0001F4A9", "rules": [
        {"name": "r \U0001F4A9", "provider": "checkout", "match": {"note": "\U0001F4A9"},
         "effect": {"http_error": {"status": 418, "body": {"said": "\U0001F4A9"}}}}]})
    assert "\\ud83d\\udca9" in doc
    resp = server.admin("PUT", "/scenarios", data=doc, headers={"Content-Type": "application/json"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["loaded"] == "renewal \U0001F4A9"
    dashboard = server.admin("GET", "/")
    assert dashboard.status_code == 200 and "r \U0001F4A9" in dashboard.text
    hit = requests.post(server.url + "/checkout/probe", json={"note": "\U0001F4A9"}, headers=AUTH, timeout=10)
    assert hit.status_code == 418 and hit.json() == {"said": "\U0001F4A9"}
    assert server.admin("GET", "/requests").status_code == 200
