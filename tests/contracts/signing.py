"""Each provider's real credentials as ``requests`` auth, so generated requests are signed as its
users sign them, and the sandbox configs that register the matching keys."""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from urllib.parse import quote, urlsplit

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from gr4vy import auth as gr4vy_auth

CHECKOUT_SECRET = "sk_sbox_" + "m" * 27
CHECKOUT_PUBLIC = "pk_sbox_" + "m" * 27
PAYSERA_ID, PAYSERA_KEY = "contract-mac-id", "contract-mac-key-0123456789abcdef"
BANK131_PROJECT = "contract-project"
ZAFAPAY_KEY = "zp_test_contract_0001"


def _pem(key, private: bool) -> str:
    if private:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()).decode()
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


class Checkout(requests.auth.AuthBase):
    def __call__(self, r):
        public = urlsplit(r.url).path.endswith("/tokens")   # tokens are made with the public key
        r.headers["Authorization"] = "Bearer " + (CHECKOUT_PUBLIC if public else CHECKOUT_SECRET)
        return r


class Gr4vy(requests.auth.AuthBase):
    def __init__(self):
        self.key = ec.generate_private_key(ec.SECP521R1())

    def __call__(self, r):
        token = gr4vy_auth.get_token(_pem(self.key, True), scopes=["*.read", "*.write"])
        r.headers["Authorization"] = "Bearer " + token
        return r


class Paysera(requests.auth.AuthBase):
    """Paysera's MAC: HMAC-SHA256 over ts, nonce, method, URI, host, port and ext (the body hash)."""

    def __init__(self, ts: str | None = None):
        self.ts = ts   # fixed only to test how a bad timestamp is answered

    def __call__(self, r):
        body = r.body or b""
        body = body.encode() if isinstance(body, str) else body
        parts = urlsplit(r.url)
        uri = parts.path + (f"?{parts.query}" if parts.query else "")
        ts, nonce = self.ts or str(int(time.time())), secrets.token_hex(16)
        ext = "body_hash=" + quote(base64.b64encode(hashlib.sha256(body).digest()).decode(), safe="") if body else ""
        text = f"{ts}\n{nonce}\n{r.method.upper()}\n{uri}\n{parts.hostname}\n{parts.port or 80}\n{ext}\n"
        mac = base64.b64encode(hmac.new(PAYSERA_KEY.encode(), text.encode(), hashlib.sha256).digest()).decode()
        fields = [("id", PAYSERA_ID), ("ts", ts), ("nonce", nonce), ("mac", mac)] + ([("ext", ext)] if ext else [])
        r.headers["Authorization"] = "MAC " + ", ".join(f'{k}="{v}"' for k, v in fields)
        return r


class Bank131(requests.auth.AuthBase):
    """RSA-SHA256 of the raw body in X-PARTNER-SIGN, the project in X-PARTNER-PROJECT."""

    def __init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def __call__(self, r):
        body = r.body or b""
        body = body.encode() if isinstance(body, str) else body
        r.headers["X-PARTNER-PROJECT"] = BANK131_PROJECT
        r.headers["X-PARTNER-SIGN"] = base64.b64encode(
            self.key.sign(body, padding.PKCS1v15(), hashes.SHA256())).decode()
        return r


class ZafaPay(requests.auth.AuthBase):
    def __call__(self, r):
        r.headers["Authorization"] = "Bearer " + ZAFAPAY_KEY
        return r


def setup(name: str) -> tuple[dict, requests.auth.AuthBase]:
    """(the providers section that registers the keys, the auth that signs with them)"""
    if name == "checkout":
        return {"checkout": {"secret_keys": [CHECKOUT_SECRET]}}, Checkout()
    if name == "gr4vy":
        signer = Gr4vy()
        return {"gr4vy": {"public_keys": [_pem(signer.key, False)]}}, signer
    if name == "paysera":
        return {"paysera": {"credentials": {PAYSERA_ID: PAYSERA_KEY}}}, Paysera()
    if name == "bank131":
        signer = Bank131()
        return {"bank131": {"projects": {BANK131_PROJECT: {"public_key": _pem(signer.key, False)}}}}, signer
    if name == "zafapay":
        return {"zafapay": {"api_keys": [ZAFAPAY_KEY]}}, ZafaPay()
    raise KeyError(name)


def session(auth: requests.auth.AuthBase) -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    s.auth = auth
    return s
