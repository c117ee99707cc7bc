import pytest
from cko_helpers import sdk


@pytest.fixture
def api(server):
    return sdk(server.url)


@pytest.fixture
def cko_server(receiver):
    """A sandbox whose Checkout.com webhooks go to a loopback receiver, signed with a known key."""
    from simulator.testing import DEFAULT_START, SandboxServer
    srv = SandboxServer({"seed": 1, "clock": {"start": DEFAULT_START}, "webhooks": "manual",
                         "providers": {"checkout": {"webhook_url": receiver.url + "/cko",
                                                    "webhook_signing_key": "cko-signing-key"}}}).start()
    yield srv
    srv.stop()
