"""The command line: start-up lines, one-line errors naming file and line, exit status 2."""
import subprocess
import sys

import requests

from simulator.testing import ServerProcess


def run(*args, timeout=30):
    return subprocess.run([sys.executable, "run.py", *args], capture_output=True, text=True, timeout=timeout)


def test_start_prints_every_provider_and_the_dashboard():
    srv = ServerProcess().wait_ready()
    try:
        health = requests.get(srv.url + "/_sandbox/health", timeout=5).json()
        assert health["status"] == "ok"
        # waitress, not the Flask development server
        assert requests.get(srv.url + "/_sandbox/health", timeout=5).headers["Server"] == "psp-sandbox"
    finally:
        out = srv.stop()
    lines = out.strip().splitlines()
    for name in health["providers"]:
        assert any(f"{srv.url}/{name}/" in line for line in lines), (name, out)
    assert f"{srv.url}/_sandbox/" in lines[-1]


def test_unknown_flag_is_one_line_exit_2():
    result = run("--bogus")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "--bogus" in result.stderr


def test_unreadable_config_names_the_file(tmp_path):
    result = run("--config", str(tmp_path / "missing.yaml"))
    assert result.returncode == 2
    assert "missing.yaml" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_invalid_config_names_file_and_line(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("seed: 1\nwebhooks: auto\nproviders:\n  checkout:\n    secret_kyes: [x]\n")
    result = run("--config", str(cfg))
    assert result.returncode == 2
    assert f"{cfg}:5:" in result.stderr and "secret_kyes" in result.stderr


def test_malformed_config_yaml_names_the_line(tmp_path):
    cfg = tmp_path / "broken.yaml"
    cfg.write_text("seed: 1\nclock: {start: \n  - [\n")
    result = run("--config", str(cfg))
    assert result.returncode == 2 and f"{cfg}:" in result.stderr and "malformed YAML" in result.stderr


def test_bad_clock_start_is_rejected(tmp_path):
    cfg = tmp_path / "clock.yaml"
    cfg.write_text("clock:\n  start: yesterday\n")
    result = run("--config", str(cfg))
    assert result.returncode == 2 and f"{cfg}:2:" in result.stderr


def test_module_entry_point():
    result = subprocess.run([sys.executable, "-m", "simulator", "--webhooks", "sometimes"], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 2 and "--webhooks" in result.stderr


def test_state_file_persists_across_restarts(tmp_path):
    state = str(tmp_path / "state.sqlite")
    key = {"Authorization": "Bearer sk_sbox_" + "a" * 27}
    body = {"source": {"type": "card", "number": "4242424242424242", "expiry_month": 12, "expiry_year": 2030},
            "currency": "EUR", "amount": 0}
    srv = ServerProcess("--state", state).wait_ready()
    try:
        pay = requests.post(srv.url + "/checkout/payments", json=body, headers=key, timeout=10).json()
    finally:
        srv.stop()
    srv = ServerProcess("--state", state).wait_ready()
    try:
        again = requests.get(f"{srv.url}/checkout/payments/{pay['id']}", headers=key, timeout=10)
        assert again.status_code == 200 and again.json()["status"] == "Card Verified"
    finally:
        srv.stop()
    with open(state, "rb") as fh:
        assert b"4242424242424242" not in fh.read()
