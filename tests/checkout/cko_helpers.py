"""Helpers shared by the Checkout.com tests: the official SDK pointed at the sandbox."""
import warnings

from checkout_sdk.checkout_sdk import CheckoutSdk
from checkout_sdk.environment import Environment

KEY = "sk_sbox_" + "a" * 27
OTHER_KEY = "sk_sbox_" + "b" * 27
PUBLIC_KEY = "pk_sbox_" + "a" * 27


def sdk(base_url: str, secret_key: str = KEY, public_key: str = PUBLIC_KEY):
    """The official checkout-sdk pointed at the sandbox (fact sheet 16.6)."""
    base = base_url.rstrip("/") + "/checkout/"
    env = Environment(base_uri=base, authorization_uri=base + "connect/token", files_uri=base,
                      transfers_uri=base, balances_uri=base, forward_uri=base, identity_uri=base,
                      is_sandbox=True)
    builder = CheckoutSdk.builder().secret_key(secret_key).public_key(public_key).environment(env)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        builder = builder.use_legacy_domain()
        return builder.build()



def card_source(number="4242424242424242", month=12, year=2030, cvv="100"):
    from checkout_sdk.payments.payments import PaymentRequestCardSource
    card = PaymentRequestCardSource()
    card.number, card.expiry_month, card.expiry_year = number, month, year
    if cvv:
        card.cvv = cvv
    return card


def id_source(src_id):
    from checkout_sdk.payments.payments import PaymentRequestIdSource
    src = PaymentRequestIdSource()
    src.id = src_id
    return src


def payment_request(source, amount=5000, currency="USD", payment_type="Recurring", merchant_initiated=False,
                    three_ds=None, previous_payment_id=None, capture=None, **extra):
    from checkout_sdk.payments.payments import PaymentRequest, ThreeDsRequest
    req = PaymentRequest()
    req.source, req.amount, req.currency = source, amount, currency
    req.payment_type = payment_type
    req.merchant_initiated = merchant_initiated
    if three_ds is not None:
        t = ThreeDsRequest()
        for k, v in three_ds.items():
            setattr(t, k, v)
        req.three_ds = t
    if previous_payment_id:
        req.previous_payment_id = previous_payment_id
    if capture is not None:
        req.capture = capture
    for k, v in extra.items():
        setattr(req, k, v)
    return req


MANDATE_3DS = {"enabled": True, "challenge_indicator": "challenge_requested_mandate"}
