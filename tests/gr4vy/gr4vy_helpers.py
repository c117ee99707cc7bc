"""Shared helpers for the Gr4vy tests: fresh P-521 keys and SDK clients aimed at the sandbox."""
from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from gr4vy import Gr4vy, auth

CARD = {"method": "card", "number": "4111111111111111", "expiration_date": "12/30", "security_code": "123"}


def new_key() -> tuple[str, str]:
    """(private PEM, public PEM) of a fresh ECDSA P-521 key, the only kind the SDK signs with."""
    key = ec.generate_private_key(ec.SECP521R1())
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


def client(server, private_pem: str | None, merchant_account_id: str | None = "default", bearer_auth=None) -> Gr4vy:
    """An SDK client minting a fresh JWT per call, or sending ``bearer_auth`` (a fixed token) as given."""
    return Gr4vy(server_url=f"{server.url}/gr4vy", bearer_auth=bearer_auth or auth.with_token(private_pem),
                 merchant_account_id=merchant_account_id, timeout_ms=10000)


def tenant_of(private_pem: str, merchant_account_id: str = "default") -> str:
    import jwt
    kid = jwt.get_unverified_header(auth.get_token(private_pem))["kid"]
    return f"{kid}:{merchant_account_id}"
