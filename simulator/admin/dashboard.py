"""The dashboard: server-rendered pages under /_sandbox/ and the forms QA runs a scenario with.

Pages work without JavaScript. Every form posts to /_sandbox/ui/..., which takes an ordinary HTML
form body and calls the same function as the JSON admin API, then redirects back (303). The admin
API itself takes JSON only, so a page on another site cannot drive it with a form; these form
endpoints refuse the same thing in their own way: a per-process token must come back in the form,
and an Origin or Referer, when the browser sends one, must be this server.
"""
from __future__ import annotations

import hmac
import json
import os
import secrets
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, abort, current_app, redirect, render_template, request

from ..core.clock import iso_z
from ..core.documents import DocumentError
from . import diagram
from . import objects as obj_api
from .routes import hosted_step, move_clock, reset_sandbox, sandbox
from .scenarios import load_scenario

bp = Blueprint("sandbox_dashboard", __name__, template_folder="templates", static_folder="static",
               static_url_path="/ui/static")

SHIPPED = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "scenarios")
CLOCK_STEPS = (("+1 h", "PT1H"), ("+1 d", "P1D"), ("+30 d", "P30D"))
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# words in the status of an object that waits for its customer: its hosted-step form opens by itself
WAITING = ("pending", "new", "created", "action", "awaiting")


@bp.record_once
def _setup(state):
    state.app.extensions["sandbox_form_token"] = secrets.token_urlsafe(32)


def form_token() -> str:
    return current_app.extensions["sandbox_form_token"]


def _same_origin(value: str | None) -> bool:
    if not value:
        return True
    here, there = urlsplit(request.host_url), urlsplit(value)
    return (here.scheme, here.netloc) == (there.scheme, there.netloc)


@bp.before_request
def _guard_forms():
    if request.method == "GET":
        return None
    if request.mimetype not in FORM_TYPES:
        abort(415)
    if not (_same_origin(request.headers.get("Origin")) and _same_origin(request.headers.get("Referer"))):
        abort(403)
    if not hmac.compare_digest(request.form.get("csrf", ""), form_token()):
        abort(403)
    return None


@bp.app_template_global()
def qs(**args) -> str:
    return urlencode({k: v for k, v in args.items() if v not in (None, "")})


@bp.app_template_filter("age")
def age(seconds) -> str:
    if seconds is None:
        return ""
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{sign}{seconds // size}{unit}"
    return f"{sign}{seconds}s"


@bp.app_template_filter("pretty")
def pretty(value) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _back(default: str = "/_sandbox/", **notice):
    target = request.form.get("next") or default
    # only pages of this dashboard: a form must not turn into an open redirect
    if not target.startswith("/_sandbox/") or target.startswith("//"):
        target = default
    if notice:
        target += ("&" if "?" in target else "?") + urlencode(notice)
    return redirect(target, 303)


def _here() -> str:
    """This page's address without its one-off messages, for forms to come back to."""
    args = [(k, v) for k, v in request.args.items(multi=True) if k not in ("notice", "problem")]
    return request.path + ("?" + urlencode(args) if args else "")


def _page(template: str, status: int = 200, /, **context):
    sb = sandbox()
    return render_template(
        f"dashboard/{template}", sb=sb, now=iso_z(sb.clock.now(), 3), csrf=form_token(),
        here=_here(), notice=request.args.get("notice"), problem=request.args.get("problem"),
        clock_steps=CLOCK_STEPS, waiting=WAITING, tenants=sb.tenants.list(), **context), status


# -- pages ------------------------------------------------------------------------------------

@bp.get("/")
def overview():
    sb = sandbox()
    return _page("overview.html", base=request.host_url.rstrip("/"),
                 kinds=sb.store.groups(), rules=sb.scenarios.summary(),
                 requests=list(reversed(sb.journal.entries(limit=20))),
                 webhooks=[sb.outbox.public(d) for d in reversed(sb.outbox.list()[-20:])])


@bp.get("/ui/objects")
def objects_page():
    sb = sandbox()
    try:
        q = obj_api.Query(request.args)
    except ValueError as exc:
        return _page("objects.html", 400, q=None, result=None, kinds=sb.store.groups(), error=str(exc))
    return _page("objects.html", q=q, result=obj_api.listing(sb, q), kinds=sb.store.groups(), error=None)


@bp.get("/ui/objects/<provider>/<kind>/<id>")
def object_page(provider, kind, id):
    sb = sandbox()
    obj, tenant, key = obj_api.lookup(sb, provider, kind, id)
    if obj is None:
        return _page("missing.html", 404, what=f"{provider} {kind} {id}")
    doc = obj_api.detail(sb, provider, kind, key, obj, tenant)
    drawn = obj_api.path(sb, provider, kind, key, obj)
    return _page("object.html", doc=doc, o=doc["object"], diagram=drawn and diagram.svg(*drawn),
                 provider=provider, kind=kind, id=key)


@bp.get("/ui/scenarios")
def scenarios_page():
    return _scenarios_page()


def _scenarios_page(status=200, text="", error=None):
    shipped = sorted(f for f in os.listdir(SHIPPED) if f.endswith((".yaml", ".yml"))) if os.path.isdir(SHIPPED) else []
    return _page("scenarios.html", status, loaded=sandbox().scenarios.listing(), shipped=shipped, text=text,
                 error=error)


@bp.get("/ui/webhooks")
def webhooks_page():
    sb = sandbox()
    status = request.args.get("status") or None
    items = [sb.outbox.public(d) for d in reversed(sb.outbox.list()) if status is None or d["status"] == status]
    return _page("webhooks.html", deliveries=items[:200], total=len(items), status=status)


@bp.get("/ui/diagrams")
def diagrams_page():
    sb = sandbox()
    drawn = [(p.name, p.title, t.name, diagram.svg(t)) for p in sb.providers.values() for t in diagram.tables(p)]
    return _page("diagrams.html", drawn=drawn)


# -- forms ------------------------------------------------------------------------------------

@bp.post("/ui/clock")
def clock_form():
    advance = (request.form.get("advance") or request.form.get("duration") or "").strip()
    body = {"advance": advance}
    if request.form.get("tenant"):
        body["tenant"] = request.form["tenant"]
    try:
        moved = move_clock(body)
    except ValueError as exc:
        return _back(problem=str(exc))
    return _back(notice=f"clock moved by {advance}: now {moved['now']}")


@bp.post("/ui/flush")
def flush_form():
    attempted = sandbox().outbox.flush()
    return _back(notice=f"flushed: {len(attempted)} delivery attempt(s)")


@bp.post("/ui/reset")
def reset_form():
    tenant = request.form.get("tenant") or None
    reset_sandbox(tenant)
    return _back(notice=f"reset {'tenant ' + tenant if tenant else 'everything'}")


@bp.post("/ui/scenarios")
def scenario_form():
    name = request.form.get("shipped") or ""
    text = request.form.get("document") or ""
    source = "<pasted document>"
    if name:
        if name not in os.listdir(SHIPPED):  # only a listed file: never a path from the form
            return _scenarios_page(400, text, {"error": f"no shipped scenario {name}", "line": None,
                                                "source": "scenarios/"})
        with open(os.path.join(SHIPPED, name), encoding="utf-8") as fh:
            text, source = fh.read(), f"scenarios/{name}"
    try:
        loaded = load_scenario(text, source)
    except DocumentError as exc:
        return _scenarios_page(400, text, exc.as_dict())
    return _back("/_sandbox/ui/scenarios", notice=f"loaded scenario {loaded['loaded']}")


@bp.post("/ui/scenarios/unload")
def scenario_unload_form():
    unloaded = sandbox().scenarios.remove(request.form.get("name") or None)
    return _back("/_sandbox/ui/scenarios", notice=f"unloaded {', '.join(unloaded) or 'nothing'}")


@bp.post("/ui/hosted/<provider>/<id>")
def hosted_form(provider, id):
    action = {"outcome": request.form.get("outcome", "approve"), "three_ds": request.form.get("three_ds", "pass")}
    if "recurring_consent" in request.form:
        action["recurring_consent"] = request.form["recurring_consent"] == "true"
    # the provider's own refusal (not waiting, bad card) comes back as its error response: shown
    response = current_app.make_response(hosted_step(provider, id, action))
    if response.status_code >= 400:
        return _back(problem=f"{response.status_code}: {response.get_data(as_text=True)[:300]}")
    return _back(notice=f"hosted step done: {action['outcome']}, 3-D Secure {action['three_ds']}")


@bp.post("/ui/webhooks/<delivery_id>/redeliver")
def redeliver_form(delivery_id):
    body, status = obj_api.redeliver(sandbox(), delivery_id)
    if status != 200:
        return _back(problem=body["error"])
    attempt = body["attempt"]
    return _back(notice=f"re-sent {delivery_id}: {attempt['status'] or attempt['error']}")



