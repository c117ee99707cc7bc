"""A scenario's http_error without a body answers as the provider answers that status itself."""
import os
import sys

import pytest
from checkout_sdk.exception import CheckoutApiException

from simulator.testing import DEFAULT_START, SandboxServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "checkout"))
from cko_helpers import card_source, payment_request, sdk  # noqa: E402


@pytest.fixture
def server():
    with SandboxServer({"seed": 1, "clock": {"start": DEFAULT_START}}) as srv:
        yield srv


def inject(server, status: int) -> None:
    doc = (f"name: down\nrules:\n  - name: status-{status}\n    provider: checkout\n    path: /checkout/payments\n"
           f"    effect: {{http_error: {status}}}\n")
    assert server.admin("PUT", "/scenarios", data=doc).status_code == 200


@pytest.mark.parametrize("status", [401, 404])
def test_an_injected_401_or_404_has_checkouts_empty_body(server, status):
    inject(server, status)
    with pytest.raises(CheckoutApiException) as exc:
        sdk(server.url).payments.request_payment(payment_request(card_source()))
    assert exc.value.http_metadata.status_code == status
    # no body to read: the SDK takes the request id from the Cko-Request-Id header
    assert exc.value.error_type is None and exc.value.error_details is None and exc.value.request_id


@pytest.mark.parametrize("status, error_type", [(422, "request_invalid"), (500, "internal_error"),
                                                (503, "service_unavailable")])
def test_an_injected_status_with_a_body_has_checkouts_error_type_for_it(server, status, error_type):
    inject(server, status)
    with pytest.raises(CheckoutApiException) as exc:
        sdk(server.url).payments.request_payment(payment_request(card_source()))
    assert exc.value.http_metadata.status_code == status
    assert exc.value.error_type == error_type
