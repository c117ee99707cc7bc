"""The responses the existing suite's main flows produce, each checked against the document.

Runs a representative set of the provider test files (each drives its provider with its real
client) in a child pytest with the ``tests.contracts.recorder`` plugin. The whole suite can be
checked the same way: ``python3 -m pytest -p tests.contracts.recorder``.
"""
import json
import os
import subprocess
import sys

FLOWS = {
    "checkout": "tests/checkout/test_checkout_recurring.py",
    "gr4vy": "tests/gr4vy/test_gr4vy_transactions.py",
    "paysera": "tests/paysera/test_paysera_flow.py",
    "bank131": "tests/bank131/test_bank131_recurring_flow.py",
    "zafapay": "tests/zafapay/test_zafapay_api.py",
}
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_every_response_of_the_main_flows_matches_the_document(tmp_path):
    report = tmp_path / "contract.json"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.contracts.recorder",
         *FLOWS.values()],
        cwd=ROOT, env={**os.environ, "PSP_CONTRACT_REPORT": str(report)}, capture_output=True, text=True,
        timeout=600)
    found = json.loads(report.read_text())
    assert found["problems"] == [], "\n".join(found["problems"])
    assert run.returncode == 0, run.stdout[-3000:]
    for provider in FLOWS:
        answers = {k: n for k, n in found["checked"].items() if k.startswith(provider + " ")}
        assert sum(answers.values()) >= 20, f"{provider}: too few responses checked: {answers}"
        assert any(k.endswith((" 200", " 201")) for k in answers)
