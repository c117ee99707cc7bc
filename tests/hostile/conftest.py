"""One sandbox with every provider configured and persisting to a state file, and its clients."""
from __future__ import annotations

import pytest
from hostile_helpers import Clients, config, new_ec_key, new_rsa_key, public_pem

from simulator.testing import SandboxServer, WebhookReceiver


@pytest.fixture(scope="module")
def keys():
    gr4vy_private, gr4vy_public = new_ec_key()
    return gr4vy_private, gr4vy_public, new_rsa_key()


@pytest.fixture
def hostile(keys, tmp_path):
    """A sandbox persisting to a state file (so its bytes can be searched), and its clients."""
    gr4vy_private, gr4vy_public, b131_key = keys
    receiver = WebhookReceiver().start()
    server = SandboxServer(config(receiver.url, gr4vy_public, public_pem(b131_key)),
                           state_path=str(tmp_path / "state.db")).start()
    server.state_path = str(tmp_path / "state.db")
    yield Clients(server, gr4vy_private, b131_key)
    server.stop()
    receiver.stop()
