"""Request validation only. Error messages ARE Checkout.com's ``error_codes``: the shared walker's
pairs become the 422 envelope's codes as they are."""
from __future__ import annotations

import re

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from ...core.cards import luhn_ok
from ...core.money import MAX_MINOR
from ..shape import schema

PAYMENT_TYPES = ("Regular", "Recurring", "MOTO", "Installment", "Unscheduled", "PayLater")
CHALLENGE_INDICATORS = ("no_preference", "no_challenge_requested", "challenge_requested",
                        "challenge_requested_mandate", "data_share", "low_value", "trusted_listing_prompt",
                        "transaction_risk_assessment")


def _e(code: str) -> dict:
    """Every marshmallow error of a field reports the same Checkout error code."""
    return {"required": code.replace("_invalid", "_required") if code.endswith("_invalid") else code,
            "invalid": code, "null": code, "validator_failed": code, "type": code}


class StrictInt(fields.Integer):
    def __init__(self, **kw):
        super().__init__(strict=True, **kw)


class StrictBool(fields.Boolean):
    def _deserialize(self, value, attr, data, **kw):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class Base(Schema):
    class Meta:
        unknown = EXCLUDE


class Obj(fields.Nested):
    """A nested object whose wrong type reports the field's own error code."""

    def _deserialize(self, value, attr, data, **kw):
        if not isinstance(value, dict):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kw)


def month_field(**kw):
    return StrictInt(validate=validate.Range(1, 12, error="card_expiry_month_invalid"),
                     error_messages=_e("card_expiry_month_invalid"), **kw)


def year_field(**kw):
    return StrictInt(validate=validate.Range(1000, 9999, error="card_expiry_year_invalid"),
                     error_messages=_e("card_expiry_year_invalid"), **kw)


class CardNumber(fields.Field):
    """Digits as a JSON string or, as in the seed guide's examples, a JSON integer. No separators
    (fact sheet, card source): a sandbox that stripped spaces or dashes would pass the integration
    that the provider refuses."""

    def _deserialize(self, value, attr, data, **kw):
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ValidationError("card_number_invalid")
        number = str(value)
        if not luhn_ok(number):   # ASCII digits only: a space, dash or NBSP fails here
            raise ValidationError("card_number_invalid")
        return number


class PhoneSchema(Base):
    country_code = fields.String(validate=validate.Length(min=1, max=7, error="phone_country_code_invalid"),
                                 error_messages=_e("phone_country_code_invalid"))
    number = fields.String(validate=validate.Length(min=6, max=25, error="phone_number_invalid"),
                           error_messages=_e("phone_number_invalid"))


def _address_line(max_len: int):
    return fields.String(validate=validate.Length(max=max_len, error="billing_address_invalid"),
                         error_messages=_e("billing_address_invalid"))


class AddressSchema(Base):
    address_line1 = _address_line(200)
    address_line2 = _address_line(200)
    city = _address_line(50)
    state = _address_line(50)
    zip = _address_line(50)
    country = fields.String(validate=validate.Regexp(r"^[A-Z]{2}$", error="country_invalid"),
                            error_messages=_e("country_invalid"))


def billing_address_field():
    return Obj(AddressSchema, error_messages=_e("billing_address_invalid"))


def phone_field():
    return Obj(PhoneSchema, error_messages=_e("phone_invalid"))


class CardSourceSchema(Base):
    type = fields.String(required=True)
    number = CardNumber(required=True, error_messages={"required": "card_number_required", "null": "card_number_required"})
    expiry_month = month_field(required=True)
    expiry_year = year_field(required=True)
    cvv = fields.String(validate=validate.Regexp(r"^\d{3,4}$", error="cvv_invalid"), error_messages=_e("cvv_invalid"))
    name = fields.String(validate=validate.Length(max=255, error="card_holder_invalid"), error_messages=_e("card_holder_invalid"))
    stored = StrictBool(error_messages=_e("stored_invalid"))
    store_for_future_use = StrictBool(error_messages=_e("store_for_future_use_invalid"))
    billing_address = billing_address_field()
    phone = phone_field()


class IdSourceSchema(Base):
    type = fields.String(required=True)
    id = fields.String(required=True, validate=validate.Regexp(r"^src_\w{26}$", error="source_id_invalid"),
                       error_messages={**_e("source_id_invalid"), "required": "source_id_required"})
    cvv = fields.String(validate=validate.Regexp(r"^\d{3,4}$", error="cvv_invalid"), error_messages=_e("cvv_invalid"))
    stored = StrictBool(error_messages=_e("stored_invalid"))
    store_for_future_use = StrictBool(error_messages=_e("store_for_future_use_invalid"))
    billing_address = billing_address_field()
    phone = phone_field()


class TokenSourceSchema(Base):
    type = fields.String(required=True)
    token = fields.String(required=True, validate=validate.Regexp(r"^tok_\w{26}$", error="token_invalid"),
                          error_messages={**_e("token_invalid"), "required": "token_required"})
    stored = StrictBool(error_messages=_e("stored_invalid"))
    store_for_future_use = StrictBool(error_messages=_e("store_for_future_use_invalid"))
    billing_address = billing_address_field()
    phone = phone_field()


class CustomerSourceSchema(Base):
    type = fields.String(required=True)
    id = fields.String(required=True, validate=validate.Regexp(r"^cus_\w{26}$", error="customer_id_invalid"),
                       error_messages={**_e("customer_id_invalid"), "required": "customer_id_required"})


SOURCE_SCHEMAS = {"card": CardSourceSchema, "id": IdSourceSchema, "token": TokenSourceSchema,
                  "customer": CustomerSourceSchema}


class Source(fields.Field):
    def _deserialize(self, value, attr, data, **kw):
        if not isinstance(value, dict):
            raise ValidationError("source_invalid")
        kind = value.get("type")
        if kind is None:
            raise ValidationError("source_type_required")
        # a list or an object cannot be a dict key: ask isinstance first, or "type": [] is a 500
        if not isinstance(kind, str) or kind not in SOURCE_SCHEMAS:
            raise ValidationError("source_type_invalid")
        return schema(SOURCE_SCHEMAS[kind]).load(value)


class ThreeDSSchema(Base):
    enabled = StrictBool(error_messages=_e("3ds_enabled_invalid"))
    attempt_n3d = StrictBool(error_messages=_e("3ds_attempt_n3d_invalid"))
    challenge_indicator = fields.String(validate=validate.OneOf(CHALLENGE_INDICATORS, error="3ds_challenge_indicator_invalid"),
                                        error_messages=_e("3ds_challenge_indicator_invalid"))
    allow_upgrade = StrictBool(error_messages=_e("3ds_allow_upgrade_invalid"))
    exemption = fields.String(error_messages=_e("3ds_exemption_invalid"))
    version = fields.String(validate=validate.Regexp(r"^\d+(\.\d+){0,2}$", error="3ds_version_invalid"),
                            error_messages=_e("3ds_version_invalid"))
    # authentication already done by the merchant's own MPI
    eci = fields.String(validate=validate.Regexp(r"^\d{2}$", error="3ds_eci_invalid"), error_messages=_e("3ds_eci_invalid"))
    cryptogram = fields.String(validate=validate.Length(min=1, max=50, error="3ds_cryptogram_invalid"),
                               error_messages=_e("3ds_cryptogram_invalid"))
    xid = fields.String(validate=validate.Length(min=1, max=100, error="3ds_xid_invalid"), error_messages=_e("3ds_xid_invalid"))
    authentication_id = fields.String(validate=validate.Length(max=100, error="3ds_authentication_id_invalid"),
                                      error_messages=_e("3ds_authentication_id_invalid"))
    status = fields.String(validate=validate.OneOf(("Y", "N", "U", "A", "C", "D", "R", "I"), error="3ds_status_invalid"),
                           error_messages=_e("3ds_status_invalid"))

    @validates_schema
    def _mpi_pair(self, data, **kw):
        if data.get("enabled") and ("eci" in data) != ("cryptogram" in data):
            missing = "cryptogram" if "eci" in data else "eci"
            raise ValidationError(f"3ds_{missing}_required", missing)


class CustomerSchema(Base):
    id = fields.String(validate=validate.Regexp(r"^cus_\w{26}$", error="customer_id_invalid"),
                       error_messages=_e("customer_id_invalid"))
    email = fields.Email(error_messages={**_e("customer_email_invalid"), "invalid": "customer_email_invalid"})
    name = fields.String(validate=validate.Length(max=255, error="customer_name_invalid"), error_messages=_e("customer_name_invalid"))
    phone = Obj(PhoneSchema, error_messages=_e("phone_invalid"))


def _descriptor_text(length: int, code: str):
    # Checkout.com: up to ``length`` characters, and a "#" is a validation error
    return [validate.Length(min=1, max=length, error=code), validate.Regexp(r"^[^#]*\Z", error=code)]


class BillingDescriptorSchema(Base):
    name = fields.String(required=True, validate=_descriptor_text(25, "billing_descriptor_name_invalid"),
                         error_messages=_e("billing_descriptor_name_invalid"))
    city = fields.String(required=True, validate=_descriptor_text(13, "billing_descriptor_city_invalid"),
                         error_messages=_e("billing_descriptor_city_invalid"))


class Metadata(fields.Dict):
    def _deserialize(self, value, attr, data, **kw):
        if not isinstance(value, dict):
            raise ValidationError("metadata_invalid")
        for k, v in value.items():
            if not isinstance(k, str) or len(k) > 100:
                raise ValidationError("metadata_key_invalid")
            if isinstance(v, (dict, list)):
                raise ValidationError("metadata_value_invalid")
        return dict(value)


class DunningSchema(Base):
    enabled = StrictBool(required=True, error_messages=_e("retry_enabled_invalid"))
    max_attempts = StrictInt(validate=validate.Range(1, 15, error="retry_max_attempts_invalid"),
                             error_messages=_e("retry_max_attempts_invalid"))
    end_after_days = StrictInt(validate=validate.Range(1, 60, error="retry_end_after_days_invalid"),
                               error_messages=_e("retry_end_after_days_invalid"))


class DowntimeSchema(Base):
    enabled = StrictBool(required=True, error_messages=_e("retry_enabled_invalid"))


class RetrySchema(DunningSchema):
    """``retry``: the flat form (enabled, max_attempts, end_after_days) is the dunning one."""
    enabled = StrictBool(error_messages=_e("retry_enabled_invalid"))
    dunning = Obj(DunningSchema, error_messages=_e("retry_dunning_invalid"))
    downtime = Obj(DowntimeSchema, error_messages=_e("retry_downtime_invalid"))


_URL = re.compile(r"^https?://[^\s/$.?#][^\s]*\Z", re.I)


class PaymentRequestSchema(Base):
    source = Source(required=True, error_messages={"required": "payment_source_required", "null": "payment_source_required"})
    amount = StrictInt(validate=validate.Range(min=0, max=MAX_MINOR, error="amount_invalid"), error_messages=_e("amount_invalid"))
    currency = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z]{3}$", error="currency_invalid"),
                             error_messages=_e("currency_invalid"))
    payment_type = fields.String(validate=validate.OneOf(PAYMENT_TYPES, error="payment_type_invalid"),
                                 error_messages=_e("payment_type_invalid"))
    merchant_initiated = StrictBool(error_messages=_e("merchant_initiated_invalid"))
    previous_payment_id = fields.String(validate=validate.Length(max=100, error="previous_payment_id_invalid"),
                                        error_messages=_e("previous_payment_id_invalid"))
    reference = fields.String(validate=validate.Length(max=50, error="reference_invalid"), error_messages=_e("reference_invalid"))
    description = fields.String(validate=validate.Length(max=100, error="description_invalid"),
                                error_messages=_e("description_invalid"))
    capture = StrictBool(error_messages=_e("capture_invalid"))
    capture_on = fields.AwareDateTime(error_messages=_e("capture_on_invalid"))
    three_ds = Obj(ThreeDSSchema, data_key="3ds", error_messages=_e("3ds_invalid"))
    customer = Obj(CustomerSchema, error_messages=_e("customer_invalid"))
    metadata = Metadata()
    # not an object: no name in it either
    billing_descriptor = Obj(BillingDescriptorSchema, error_messages=_e("billing_descriptor_name_invalid"))
    success_url = fields.String(validate=[validate.Length(max=255, error="success_url_invalid"),
                                          validate.Regexp(_URL, error="success_url_invalid")],
                                error_messages=_e("success_url_invalid"))
    failure_url = fields.String(validate=[validate.Length(max=255, error="fail_url_invalid"),
                                          validate.Regexp(_URL, error="fail_url_invalid")],
                                error_messages=_e("fail_url_invalid"))
    processing_channel_id = fields.String(validate=validate.Regexp(r"^pc_\w{26}$", error="processing_channel_id_invalid"),
                                          error_messages=_e("processing_channel_id_invalid"))
    authorization_type = fields.String(validate=validate.OneOf(("Final", "Estimated"), error="authorization_type_invalid"),
                                       error_messages=_e("authorization_type_invalid"))
    processing = fields.Dict(error_messages=_e("processing_invalid"))
    retry = Obj(RetrySchema, error_messages=_e("retry_invalid"))


class CaptureRequestSchema(Base):
    amount = StrictInt(validate=validate.Range(min=1, max=MAX_MINOR, error="amount_invalid"), error_messages=_e("amount_invalid"))
    capture_type = fields.String(validate=validate.OneOf(("Final", "NonFinal"), error="capture_type_invalid"),
                                 error_messages=_e("capture_type_invalid"))
    reference = fields.String(validate=validate.Length(max=50, error="reference_invalid"), error_messages=_e("reference_invalid"))
    metadata = Metadata()


class RefundRequestSchema(CaptureRequestSchema):
    capture_type = None
    capture_action_id = fields.String()


class VoidRequestSchema(Base):
    reference = fields.String(validate=validate.Length(max=50, error="reference_invalid"), error_messages=_e("reference_invalid"))
    metadata = Metadata()


class TokenRequestSchema(Base):
    type = fields.String(required=True, validate=validate.Equal("card", error="token_type_invalid"),
                         error_messages={**_e("token_type_invalid"), "required": "token_type_required"})
    number = CardNumber(required=True, error_messages={"required": "card_number_required", "null": "card_number_required"})
    expiry_month = month_field(required=True)
    expiry_year = year_field(required=True)
    cvv = fields.String(validate=validate.Regexp(r"^\d{3,4}$", error="cvv_invalid"), error_messages=_e("cvv_invalid"))
    name = fields.String()
    billing_address = billing_address_field()
    phone = phone_field()


class CustomerCreateSchema(Base):
    email = fields.Email(required=True, error_messages={**_e("customer_email_invalid"), "required": "customer_email_required",
                                                        "invalid": "customer_email_invalid"})
    name = fields.String(validate=validate.Length(max=255, error="customer_name_invalid"), error_messages=_e("customer_name_invalid"))
    phone = Obj(PhoneSchema, error_messages=_e("phone_invalid"))
    metadata = Metadata()
    default = fields.String(validate=validate.Regexp(r"^src_\w{26}$", error="instrument_id_invalid"),
                            error_messages=_e("instrument_id_invalid"))


class CustomerUpdateSchema(CustomerCreateSchema):
    email = fields.Email(error_messages={**_e("customer_email_invalid"), "invalid": "customer_email_invalid"})


class InstrumentCustomerSchema(Base):
    id = fields.String(validate=validate.Regexp(r"^cus_\w{26}$", error="customer_id_invalid"), error_messages=_e("customer_id_invalid"))
    email = fields.Email(error_messages={**_e("customer_email_invalid"), "invalid": "customer_email_invalid"})
    name = fields.String()
    default = StrictBool(error_messages=_e("customer_default_invalid"))


class InstrumentCreateSchema(Base):
    type = fields.String(required=True, validate=validate.OneOf(("token", "card"), error="instrument_type_invalid"),
                         error_messages={**_e("instrument_type_invalid"), "required": "instrument_type_required"})
    token = fields.String(validate=validate.Regexp(r"^tok_\w{26}$", error="token_invalid"), error_messages=_e("token_invalid"))
    number = CardNumber(error_messages={"null": "card_number_required"})
    expiry_month = month_field()
    expiry_year = year_field()
    name = fields.String()
    account_holder = fields.Dict()
    customer = Obj(InstrumentCustomerSchema, error_messages=_e("customer_invalid"))

    @validates_schema
    def _by_type(self, data, **kw):
        if data.get("type") == "token" and not data.get("token"):
            raise ValidationError("token_required", "token")
        if data.get("type") == "card":
            for f, code in (("number", "card_number_required"), ("expiry_month", "card_expiry_month_required"),
                            ("expiry_year", "card_expiry_year_required")):
                if f not in data:
                    raise ValidationError(code, f)


class InstrumentUpdateSchema(Base):
    expiry_month = month_field()
    expiry_year = year_field()
    name = fields.String()
    account_holder = fields.Dict()
    customer = Obj(InstrumentCustomerSchema, error_messages=_e("customer_invalid"))
