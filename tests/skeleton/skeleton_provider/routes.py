"""Thin handlers: parse, machine, view."""
from functools import partial

from flask import Blueprint

from simulator.lazy import LazyModule
from simulator.providers.base import current_provider, no_auth

from . import views

bp = Blueprint("skeleton", __name__)
# imported by the first request that parses a body, not at start (marshmallow builds every class)
schemas = LazyModule(__package__ + ".schemas")


provider = partial(current_provider, "skeleton")


@bp.post("/payments")
def create_payment():
    p = provider()
    data = p.parse(schemas.CreatePayment, allow_empty=False)
    return p.render_json(views.payment(p.machine.create(p.tenant, data)), 201)


@bp.get("/payments/<payment_id>")
def get_payment(payment_id):
    p = provider()
    return p.render_json(views.payment(p.machine.get(p.tenant, payment_id)))


@bp.post("/pay/<payment_id>")
@no_auth
def pay_page_submit(payment_id):
    """The hosted page's form target (no credentials: the customer's browser posts it)."""
    p = provider()
    return p.render_json(views.payment(p.machine.pay(payment_id, "approve")))


def hosted_action(p, object_id, action):
    return p.render_json(views.payment(p.machine.pay(object_id, action.get("outcome", "approve"))))
