"""Request signing: X-PARTNER-PROJECT + X-PARTNER-SIGN (RSA PKCS#1 v1.5, SHA-256, Base64, raw body)."""
import base64

from bank131_client import Bank131Client, bank, first_payment, new_key, php_json, public_pem, sign  # noqa: F401


def _journal_last(server):
    return server.journal(provider="bank131")[-1]


def test_signed_request_accepted_and_marked_verified(bank):
    resp = bank.client.session("create", {"customer": {"reference": "a/b"},
                                          "metadata": {"return": "https://shop.example/x"}})
    assert resp.status_code == 200, resp.text
    # the client escaped the slashes as PHP does; verifying re-serialised JSON would have failed
    assert _journal_last(bank.server)["verified"] is True


def test_wrong_key_rejected(bank):
    other = Bank131Client(bank.server.url, "my-project", new_key())
    resp = other.session("create", {})
    assert resp.status_code == 401
    assert resp.json() == {"status": "error", "error": {"code": "authentication_error",
                                                        "description": "check the X-PARTNER-SIGN signature"}}
    assert bank.server.sandbox.store.list("bank131", "session", "my-project") == []


def test_body_changed_after_signing_rejected(bank):
    raw = php_json(first_payment())
    signature = sign(bank.key, raw)
    tampered = raw.replace(b"10000", b"10001")
    resp = bank.client.raw("/api/v1/session/init/payment", tampered, signature=signature)
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "authentication_error"
    # the untouched body with the same signature goes through
    assert bank.client.raw("/api/v1/session/init/payment", raw, signature=signature).status_code == 200


def test_missing_project_header_rejected(bank):
    resp = bank.client.session("create", {}, headers={"X-PARTNER-PROJECT": None})
    assert resp.status_code == 401
    assert resp.json()["status"] == "error" and resp.json()["error"]["code"] == "identification_error"


def test_missing_or_garbage_signature_rejected(bank):
    resp = bank.client.session("create", {}, headers={"X-PARTNER-SIGN": None})
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "authentication_error"
    resp = bank.client.session("create", {}, signature="not base64 at all!")
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "authentication_error"
    resp = bank.client.session("create", {}, signature=base64.b64encode(b"x" * 256).decode())
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "authentication_error"


def test_signature_of_another_projects_key_rejected(bank):
    """Two registered projects: a request signed with project B's key but naming project A fails."""
    key_b = new_key()
    bank.server.admin("PUT", "/config", json={"providers": {"bank131": {"projects": {
        "project-b": {"public_key": public_pem(key_b)}}}}})
    b = Bank131Client(bank.server.url, "project-b", key_b)
    assert b.session("create", {}).status_code == 200
    spoof = Bank131Client(bank.server.url, "my-project", key_b)
    assert spoof.session("create", {}).status_code == 401


def test_unregistered_project_accepted_unverified(server):
    client = Bank131Client(server.url, "nobody-registered-me", new_key())
    resp = client.session("create", {})
    assert resp.status_code == 200
    entry = _journal_last(server)
    assert entry["tenant"] == "nobody-registered-me" and entry["verified"] is False


def test_empty_php_array_body_is_no_parameters(bank):
    """The SDK sends `[]` for a request without fields: session/create with no parameters."""
    resp = bank.client.post("/api/v1/session/create", None)
    assert resp.status_code == 200 and resp.json()["session"]["status"] == "created"


def test_invalid_public_key_in_config_rejected(server):
    resp = server.admin("PUT", "/config", json={"providers": {"bank131": {"projects": {
        "p": {"public_key": "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n"}}}}})
    assert resp.status_code == 400
    assert "public_key" in resp.text


def test_sandbox_key_served_and_stable(server):
    first = server.admin("GET", "/keys/bank131")
    assert first.status_code == 200 and first.text.startswith("-----BEGIN PUBLIC KEY-----")
    assert server.admin("GET", "/keys/bank131").text == first.text


def test_a_repeated_signed_body_is_accepted_each_time_and_only_with_the_current_key(bank):
    raw = php_json(first_payment())
    signature = sign(bank.key, raw)
    first = bank.client.raw("/api/v1/session/init/payment", raw, signature=signature)
    again = bank.client.raw("/api/v1/session/init/payment", raw, signature=signature)
    assert first.status_code == again.status_code == 200
    assert [e["verified"] for e in bank.server.journal(provider="bank131")[-2:]] == [True, True]
    # the project's key is replaced: a signature the old key made, verified before, no longer passes
    bank.server.admin("PUT", "/config", json={"providers": {"bank131": {"projects": {
        "my-project": {"public_key": public_pem(new_key())}}}}})
    resp = bank.client.raw("/api/v1/session/init/payment", raw, signature=signature)
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "authentication_error"
