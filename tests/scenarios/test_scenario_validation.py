"""Invalid scenario documents are rejected whole, with the source, the line and the reason."""
import subprocess
import sys

import pytest

from scenario_helpers import ROOT

GOOD_RULE = """\
  - name: fine
    provider: checkout
    effect: {latency_ms: 1}
"""

# (kind of mistake, document, line of the mistake, words the reason must contain)
MISTAKES = [
    ("malformed YAML", "name: x\nrules:\n  - name: a\n    effect: {latency_ms: 1\n", 5, "malformed YAML"),
    ("duplicate key", "name: x\nname: y\nrules: []\n", 2, "duplicate key"),
    ("unknown top-level key", "name: x\nrule: []\n", 2, "rule: Unknown field"),
    ("unknown rule key", "name: x\nrules:\n" + GOOD_RULE + "  - name: b\n    provider: checkout\n    mtch: {amount: 1}\n"
     "    effect: {latency_ms: 1}\n", 8, "rules.1.mtch: Unknown field"),
    ("unknown effect", "name: x\nrules:\n  - name: a\n    provider: checkout\n    effect:\n      decline_code: '20051'\n",
     6, "rules.0.effect.decline_code: Unknown field"),
    ("no effect at all", "name: x\nrules:\n  - name: a\n    provider: checkout\n    effect: {}\n", 5, "at least one effect"),
    ("missing effect", "name: x\nrules:\n  - name: a\n    provider: checkout\n", 3, "effect: Missing data"),
    ("wrong type for nth", "name: x\nrules:\n  - name: a\n    provider: checkout\n    nth: two\n    effect: {latency_ms: 1}\n",
     5, "nth: must be an integer"),
    ("string where a number belongs", "name: x\nrules:\n  - name: a\n    provider: checkout\n    probability: '0.1'\n"
     "    effect: {latency_ms: 1}\n", 5, "probability: must be a number"),
    ("probability above 1", "name: x\nrules:\n  - name: a\n    provider: checkout\n    probability: 1.5\n"
     "    effect: {latency_ms: 1}\n", 5, "between 0 and 1"),
    ("nth zero", "name: x\nrules:\n  - name: a\n    provider: checkout\n    nth: 0\n    effect: {latency_ms: 1}\n",
     5, "1 or more"),
    ("nth and times together", "name: x\nrules:\n  - name: a\n    provider: checkout\n    nth: 2\n    times: 3\n"
     "    effect: {latency_ms: 1}\n", 6, "not both"),
    ("unknown provider", "name: x\nrules:\n  - name: a\n    provider: stripe\n    effect: {latency_ms: 1}\n",
     4, "unknown provider"),
    ("decline code the provider does not have", "name: x\nrules:\n  - name: a\n    provider: checkout\n"
     "    effect:\n      decline: '99999'\n", 6, "not a checkout decline code"),
    ("decline without a provider", "name: x\nrules:\n  - name: a\n    effect:\n      decline: '20051'\n",
     5, "name the provider"),
    ("bad token value", "name: x\nrules:\n  - name: a\n    provider: checkout\n    effect: {token: stolen}\n",
     5, "inactive or expired"),
    ("bad drop_connection", "name: x\nrules:\n  - name: a\n    provider: checkout\n    effect: {drop_connection: sometimes}\n",
     5, "drop_connection"),
    ("http_error status out of range", "name: x\nrules:\n  - name: a\n    provider: checkout\n    effect:\n"
     "      http_error: {status: 200}\n", 6, "400-599"),
    ("unknown webhook effect", "name: x\nrules:\n  - name: a\n    provider: checkout\n    effect:\n      webhook:\n"
     "        fail: 3\n        retry: 2\n", 8, "webhook.retry: Unknown field"),
    ("bad webhook delay", "name: x\nrules:\n  - name: a\n    provider: checkout\n    effect:\n      webhook:\n"
     "        delay: ten minutes\n", 7, "ISO-8601 duration"),
    ("unknown match operator", "name: x\nrules:\n  - name: a\n    provider: checkout\n    match:\n      amount:\n"
     "        gt: 100\n    effect: {latency_ms: 1}\n", 7, "unknown operator"),
    ("bad regex", "name: x\nrules:\n  - name: a\n    provider: checkout\n    match:\n      reference: {regex: '(['}\n"
     "    effect: {latency_ms: 1}\n", 6, "invalid regular expression"),
    ("list instead of in", "name: x\nrules:\n  - name: a\n    provider: checkout\n    match:\n      currency: [EUR, GBP]\n"
     "    effect: {latency_ms: 1}\n", 6, "use {in:"),
    ("unquoted timestamp in match", "name: x\nrules:\n  - name: a\n    provider: checkout\n    match:\n"
     "      capture_on: 2026-02-01T00:00:00Z\n    effect: {latency_ms: 1}\n", 6, "quote timestamps"),
    ("unknown HTTP method", "name: x\nrules:\n  - name: a\n    provider: checkout\n    method: FETCH\n"
     "    effect: {latency_ms: 1}\n", 5, "unknown HTTP method"),
    ("relative path", "name: x\nrules:\n  - name: a\n    provider: checkout\n    path: payments\n"
     "    effect: {latency_ms: 1}\n", 5, "must start with /"),
    ("rules not a list", "name: x\nrules:\n  name: a\n", 2, "Not a valid list"),
    ("duplicate rule names", "name: x\nrules:\n" + GOOD_RULE + GOOD_RULE, 6, "duplicate rule name"),
    ("missing name", "rules: []\n", 1, "name: Missing data"),
    ("bad clock start", "name: x\nclock: {start: yesterday}\nrules: []\n", 2, "ISO-8601"),
    ("bad after", "name: x\nrules:\n  - name: a\n    provider: checkout\n    after: soon\n    effect: {latency_ms: 1}\n",
     5, "after"),
    ("not a mapping", "- name: a\n", 1, "mapping"),
]


@pytest.mark.parametrize("kind,doc,line,reason", MISTAKES, ids=[m[0] for m in MISTAKES])
def test_put_rejects_with_line_and_reason(server, kind, doc, line, reason):
    resp = server.admin("PUT", "/scenarios", data=doc)
    assert resp.status_code == 400, kind
    err = resp.json()
    assert err["source"] == "<request body>"
    assert err["line"] == line, err
    assert reason in err["error"], err


def test_a_rejected_document_changes_nothing(server):
    good = "name: kept\nrules:\n  - name: kept-rule\n    provider: checkout\n    effect: {latency_ms: 1}\n"
    assert server.admin("PUT", "/scenarios", data=good).status_code == 200
    # first rule fine, second broken: neither is loaded, and "kept" keeps its rules
    half = "name: kept\nrules:\n" + GOOD_RULE + "  - name: b\n    provider: checkout\n    effect: {token: x}\n"
    assert server.admin("PUT", "/scenarios", data=half).status_code == 400
    listing = server.admin("GET", "/scenarios").json()["scenarios"]
    assert [(s["name"], [r["name"] for r in s["rules"]]) for s in listing] == [("kept", ["kept-rule"])]


def test_empty_body_is_rejected(server):
    resp = server.admin("PUT", "/scenarios", data=b"")
    assert resp.status_code == 400 and "empty" in resp.json()["error"]


def run_cli(*args):
    return subprocess.run([sys.executable, "run.py", "--port", "0", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("kind", ["unknown rule key", "malformed YAML", "decline code the provider does not have",
                                  "bad regex"])
def test_run_py_exits_2_with_one_line_naming_file_and_line(tmp_path, kind):
    _, doc, line, reason = next(m for m in MISTAKES if m[0] == kind)
    good = tmp_path / "good.yaml"
    good.write_text("name: good\nrules:\n" + GOOD_RULE)
    bad = tmp_path / "bad.yaml"
    bad.write_text(doc)
    result = run_cli("--scenario", str(good), "--scenario", str(bad))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"psp-sandbox: {bad}:{line}: ") and reason in lines[0]
    assert result.stdout == ""          # nothing served


def test_run_py_unreadable_scenario(tmp_path):
    result = run_cli("--scenario", str(tmp_path / "missing.yaml"))
    assert result.returncode == 2
    assert result.stderr.startswith(f"psp-sandbox: {tmp_path / 'missing.yaml'}: cannot read")


def test_every_shipped_scenario_is_valid():
    import glob
    from simulator.core.scenarios import ScenarioEngine
    files = sorted(glob.glob(f"{ROOT}/scenarios/*.yaml"))
    assert len(files) >= 7
    for doc in ScenarioEngine.read_files(files):
        assert doc["rules"]
    for path in files:   # each says what it is for, in a comment at the top
        assert open(path).read().startswith("# "), path
