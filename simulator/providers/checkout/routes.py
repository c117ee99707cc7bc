"""Checkout.com routes: thin handlers — parse, run the machine, render."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("checkout", __name__, template_folder="templates")


def provider():
    from . import Checkout
    return Checkout.current()


@bp.get("/payments/<payment_id>")
def get_payment(payment_id):
    p = provider()
    p.fail("not_found", 404)


def hosted_action(p, object_id, action):
    return p.error("not_found", 404)
