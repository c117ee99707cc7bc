"""What the admin modules share: the /_sandbox blueprint and small request helpers."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

admin = Blueprint("sandbox_admin", __name__, template_folder="templates")


def sandbox():
    return current_app.extensions["sandbox"]


def bad_request(message: str, **extra):
    return jsonify({"error": message, **extra}), 400


def body_dict():
    data = request.get_json(silent=True, force=True) if request.get_data() else {}
    return data if isinstance(data, dict) else None
