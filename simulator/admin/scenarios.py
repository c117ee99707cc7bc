"""/_sandbox/scenarios: list loaded rules with hit counts, load a document, unload.

PUT takes one scenario document (YAML or JSON, any content type). It is validated completely
before anything changes: on error the answer is 400 with the reason and the line, and the rules
already loaded stay as they were. A document with the name of a loaded one replaces it, so the
same PUT twice leaves one copy. The document's ``seed`` and ``clock`` apply at start-up only
(``--scenario``): changing the seed of a running server would re-issue ids it already handed out.
"""
from __future__ import annotations

from flask import jsonify, request

from ..core.cards import mask_json
from ..core.documents import DocumentError
from .common import admin, sandbox

SOURCE = "<request body>"


def _listing():
    # a rule may match on a card number (``match: {source.number: ...}``): shown masked, as the
    # journal shows the requests it matched
    return {"scenarios": mask_json(sandbox().scenarios.listing())}


@admin.get("/scenarios")
def scenarios_list():
    return jsonify(_listing())


@admin.put("/scenarios")
def scenarios_load():
    try:
        return jsonify(load_scenario(request.get_data(), SOURCE))
    except DocumentError as exc:
        return jsonify(exc.as_dict()), 400


def load_scenario(raw: bytes | str, source: str) -> dict:
    """Validate and install one scenario document; DocumentError (with its line) if it is wrong."""
    engine = sandbox().scenarios
    if not raw.strip():
        raise DocumentError(source, None, "empty body: send a scenario document (YAML or JSON)")
    scenario = engine.load_text(raw, source)
    body = _listing()
    body["loaded"] = scenario.name
    ignored = [k for k in ("seed", "clock") if scenario.document.get(k) is not None]
    if ignored:
        body["note"] = (f"{' and '.join(ignored)} take effect only when the scenario is loaded at "
                        "start-up (--scenario); use --seed, and POST /_sandbox/reset to replay")
    return body


@admin.delete("/scenarios")
def scenarios_unload_all():
    return jsonify({"unloaded": sandbox().scenarios.remove(), "scenarios": []})


@admin.delete("/scenarios/<path:name>")   # a name may hold a "/"
def scenarios_unload(name):
    engine = sandbox().scenarios
    unloaded = engine.remove(name)
    if not unloaded:
        return jsonify({"error": f"no scenario named {name!r} is loaded"}), 404
    return jsonify({"unloaded": unloaded, **_listing()})
