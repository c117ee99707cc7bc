"""What start-up defers to first use still works the same: URL building, OpenAPI documents, e-mail
validation; and start-up itself does not do that work."""
import json
import re
import subprocess
import sys
import threading

import pytest
import requests
from flask import url_for
from marshmallow import ValidationError, validate
from werkzeug.routing import Map, Rule

from simulator import create_app
from simulator.lazy import LazyModule, LazyRule
from simulator.providers import REGISTERED
from simulator.providers.openapi import document


def test_url_for_builds_provider_and_admin_urls():
    app = create_app({})
    with app.test_request_context(base_url="http://127.0.0.1:8080"):
        assert url_for("checkout.get_payment", payment_id="pay_1") == "/checkout/payments/pay_1"
        assert url_for("gr4vy.get_transaction_refund", transaction_id="t 1", refund_id="r?2#ü") == \
            "/gr4vy/transactions/t%201/refunds/r%3F2%23%C3%BC"
        assert url_for("zafapay.checkout_submit", req_id="req_1", _method="POST", lang="en") == \
            "/zafapay/checkout/req_1?lang=en"
        assert url_for("sandbox_dashboard.static", filename="css/a b.css") == "/_sandbox/ui/static/css/a%20b.css"
        assert url_for("openapi_page", name="bank131", _external=True) == "http://127.0.0.1:8080/_sandbox/openapi/bank131"


@pytest.mark.parametrize("apps", [1, 2], ids=["first app", "second app"])
def test_every_rule_builds_and_matches_what_werkzeug_does(apps):
    # the second app of a process takes its rules' parsed parts from the first
    for _ in range(apps):
        app = create_app({})
    eager = Map([Rule(r.rule, endpoint=r.endpoint, methods=r.methods, defaults=r.defaults)
                 for r in app.url_map.iter_rules()])
    lazy_adapter, eager_adapter = app.url_map.bind("127.0.0.1:8080"), eager.bind("127.0.0.1:8080")
    rules = list(app.url_map.iter_rules())
    assert len(rules) > 100 and all(isinstance(r, LazyRule) for r in rules)
    for rule in rules:
        values = {arg: f"v {arg}/ü" for arg in rule.arguments}
        method = sorted(rule.methods - {"HEAD", "OPTIONS"})[0]
        for extra, append_unknown in (({}, True), ({"q": "a b"}, True), ({"q": "a b"}, False)):
            args = (rule.endpoint, {**values, **extra}, method)
            assert lazy_adapter.build(*args, append_unknown=append_unknown) == \
                eager_adapter.build(*args, append_unknown=append_unknown), rule.rule
        path = eager_adapter.build(rule.endpoint, {arg: f"v-{arg}-ü" for arg in rule.arguments}, method)
        assert lazy_adapter.match(path, method) == eager_adapter.match(path, method), rule.rule
        assert rule.arguments == eager._rules_by_endpoint[rule.endpoint][0].arguments


def test_a_second_app_parses_no_rule_again(monkeypatch):
    create_app({})
    parsed = []
    real = Rule._parse_rule

    def counting(self, rule):
        parsed.append(rule)
        return real(self, rule)
    monkeypatch.setattr(Rule, "_parse_rule", counting)
    app = create_app({})
    assert parsed == [] and len(list(app.url_map.iter_rules())) > 100


def test_builders_are_compiled_on_first_use_only(monkeypatch):
    compiled = []
    real = Rule._get_func_code

    def counting(code, name):
        compiled.append(name)
        return real(code, name)
    monkeypatch.setattr(Rule, "_get_func_code", staticmethod(counting))
    app = create_app({})
    assert compiled == []
    with app.test_request_context():
        for _ in range(3):
            url_for("checkout.get_payment", payment_id="pay_1")
    assert len(compiled) == 1
    adapter = app.url_map.bind("127.0.0.1")
    for _ in range(3):   # the rule's other builder: values it does not know are left out
        adapter.build("checkout.get_payment", {"payment_id": "pay_1", "q": "1"}, append_unknown=False)
    assert len(compiled) == 2


def test_start_up_leaves_contracts_schemas_sqlite_and_the_email_pattern_for_first_use():
    probe = ("import json, re, sys\n"
             "from simulator import create_app\n"
             "app = create_app({})\n"
             "from marshmallow.validate import Email\n"
             "def loaded(): return sorted(m for m in sys.modules if m.endswith(('.contract', '.schemas'))"
             " or m in ('apispec', 'sqlite3'))\n"
             "before = loaded()\n"
             "bad = app.test_client().post('/checkout/payments', json={'amount': 'ten'},"
             " headers={'Authorization': 'Bearer sk_sbox_' + 'a' * 27})\n"
             "print(json.dumps({'loaded': before, 'compiled': isinstance(Email.DOMAIN_REGEX, re.Pattern),"
             " 'first request': [bad.status_code, bad.get_json()['error_type']], 'then': loaded()}))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(out.stdout) == {"loaded": [], "compiled": False, "first request": [422, "request_invalid"],
                                      "then": ["simulator.providers.checkout.schemas"]}


def test_a_lazy_module_runs_once_whichever_threads_read_it_first(tmp_path, monkeypatch):
    (tmp_path / "slow_schemas.py").write_text(
        "import time\n"
        "with open(__file__ + '.runs', 'a') as f: f.write('run\\n')\n"
        "time.sleep(0.05)   # readers arrive while it runs\n"
        "VALUE = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = LazyModule("slow_schemas")
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(module.VALUE)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == [42] * 8 and module.VALUE == 42
    assert (tmp_path / "slow_schemas.py.runs").read_text() == "run\n"
    sys.modules.pop("slow_schemas", None)


@pytest.mark.parametrize("address", ["jo@example.com", "jo@bücher.de", "jo@[127.0.0.1]", "jo@localhost",
                                     "jo@bad_domain", "jo@-bad.com", "jo@example.c", "jo@xn--bcher-kva.de"])
def test_email_validation_is_marshmallows_own(address):
    source = validate.Email.DOMAIN_REGEX

    class Eager(validate.Email):
        DOMAIN_REGEX = re.compile(source.pattern, source.flags)

    def outcome(validator):
        try:
            return validator(address)
        except ValidationError as exc:
            return exc.messages
    assert outcome(validate.Email()) == outcome(Eager())


def test_served_documents_are_the_generated_ones(server):
    reference = create_app({})
    for name in REGISTERED:
        served = requests.get(f"{server.url}/{name}/openapi.json", timeout=30)
        assert served.status_code == 200
        provider = reference.extensions["sandbox"].providers[name]
        with reference.test_request_context():
            expected = document(reference, provider, f"{server.url}/{name}")
        assert served.json() == expected
