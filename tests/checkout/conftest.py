import warnings

import pytest
from checkout_sdk.checkout_sdk import CheckoutSdk
from checkout_sdk.environment import Environment

KEY = "sk_sbox_" + "a" * 27
OTHER_KEY = "sk_sbox_" + "b" * 27
PUBLIC_KEY = "pk_sbox_" + "a" * 27


def sdk(base_url: str, secret_key: str = KEY):
    """The official checkout-sdk pointed at the sandbox (fact sheet 16.6)."""
    base = base_url.rstrip("/") + "/checkout/"
    env = Environment(base_uri=base, authorization_uri=base + "connect/token", files_uri=base,
                      transfers_uri=base, balances_uri=base, forward_uri=base, identity_uri=base,
                      is_sandbox=True)
    builder = CheckoutSdk.builder().secret_key(secret_key).environment(env)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        builder = builder.use_legacy_domain()
        return builder.build()


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
