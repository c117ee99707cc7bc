"""Fixtures the Gr4vy tests share: a fresh merchant key, and the official SDK signing with it."""
import pytest

from gr4vy_helpers import client, new_key


@pytest.fixture
def pem():
    """A fresh private key: its key id is a tenant of its own."""
    return new_key()[0]


@pytest.fixture
def sdk(server, pem):
    return client(server, pem)
