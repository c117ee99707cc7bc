"""Request validation only."""
from marshmallow import EXCLUDE, Schema, fields, validate


class CreatePayment(Schema):
    class Meta:
        unknown = EXCLUDE
    amount = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    currency = fields.String(required=True, validate=validate.Regexp(r"^[A-Z]{3}$"))
    webhook_url = fields.Url(require_tld=False)
