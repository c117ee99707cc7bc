"""What the dashboard and the admin API say about one stored object.

Objects are read through generic field names only (a status, an amount, a reference, a creation
time), so every provider's objects show up without the dashboard knowing the provider. Everything
returned here is masked: merchants put card numbers in free text too.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone

from ..core.cards import mask_json
from ..core.clock import iso_z, parse_instant
from ..core.history import status_of
from ..core.journal import masked_body

REFERENCE_FIELDS = ("reference", "order_id", "merchant_reference", "external_identifier", "unique_identifier",
                    "external_id")
CREATED_FIELDS = ("created_at", "requested_on", "created", "createdAt")
# other ids an object is known by on the wire: its own id where it is stored under another key (a
# payment kept under its request's id), a 3-D Secure session, a transaction number
ALIAS_FIELDS = ("id", "session_id", "transaction_id", "tx_id", "token")


def masked(value):
    """A stored object as plain JSON (times in ISO-8601), card numbers masked."""
    def plain(v):
        return iso_z(v, 3) if isinstance(v, datetime) else str(v)
    return mask_json(json.loads(json.dumps(value, default=plain)))


def masked_payload(payload: str, content_type: str | None = "application/json"):
    """A webhook payload as the admin API shows it: card numbers and security codes masked as the
    journal masks a body, in the layout it was sent in wherever that stays valid JSON. The payload
    actually sent is never touched."""
    return masked_body(payload, content_type)


def delivery(shown: dict) -> dict:
    """A delivery as ``outbox.public`` gives it, its payload masked (a copy: the outbox's is sent)."""
    if "payload" not in shown:
        return shown
    return {**shown, "payload": masked_payload(shown["payload"], shown.get("content_type"))}


def _first(obj: dict, names):
    return next((obj[n] for n in names if obj.get(n) not in (None, "")), None)


def _money(obj: dict):
    for holder in (obj, obj.get("price"), obj.get("amount_details")):
        if not isinstance(holder, dict):
            continue
        amount = holder.get("amount", holder.get("_amount"))
        if isinstance(amount, bool) or amount is None or isinstance(amount, (dict, list)):
            continue
        return amount, holder.get("currency", holder.get("_currency"))
    if "_amount" in obj:
        return obj["_amount"], obj.get("_currency")
    return None, None


def instant(value) -> datetime | None:
    """A creation time in any of the shapes objects keep it: datetime, unix seconds, ISO text."""
    try:
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, timezone.utc)
        if isinstance(value, str):
            return parse_instant(value)
    except (ValueError, OverflowError, OSError):
        pass
    return None


def wire_status(obj: dict) -> str | None:
    """The status the provider shows (an internal state only where there is no such field)."""
    return obj["status"] if isinstance(obj.get("status"), str) else status_of(obj)


def reference_of(obj: dict):
    value = _first(obj, REFERENCE_FIELDS)
    return value if isinstance(value, (str, int)) and not isinstance(value, bool) else None


def created_of(obj: dict) -> datetime | None:
    return instant(_first(obj, CREATED_FIELDS))


def summary(sb, provider: str, kind: str, id: str, obj: dict, tenant: str) -> dict:
    """``id``: the key the object is stored under, which every admin address takes."""
    amount, currency = _money(obj)
    created = created_of(obj)
    return mask_json({
        "provider": provider, "tenant": tenant, "kind": kind, "id": id, "status": wire_status(obj),
        "amount": amount, "currency": currency, "reference": reference_of(obj),
        "created_at": iso_z(created, 3) if created else None,
        "age_seconds": int((sb.clock.now(tenant) - created).total_seconds()) if created else None,
    })


def matches(obj: dict, reference: str | None, status: str | None) -> bool:
    if status and status.lower() != str(wire_status(obj)).lower():
        return False
    value = reference_of(obj)
    return not reference or (value is not None and reference.lower() in str(value).lower())


def aliases(sb, provider: str, kind: str, id: str, obj: dict, tenant: str) -> set[str]:
    """Every id the object is reached by: the key it is stored under, the ids it carries, and those
    its provider keeps elsewhere (a page's token on a record of its own)."""
    names = {id} | {v for k in ALIAS_FIELDS if isinstance(v := obj.get(k), str) and len(v) >= 8}
    owner = sb.providers.get(provider)
    if owner is not None:
        names.update(v for v in owner.aliases_of(kind, id, obj, tenant) if isinstance(v, str) and v)
    return names


def card_like(obj) -> bool:
    """A stored card or token: it carries a card's last four digits."""
    if not isinstance(obj, dict):
        return False
    return "last4" in obj or (isinstance(obj.get("card"), dict) and "last4" in obj["card"])


def fingerprint_of(obj: dict) -> str | None:
    for holder in (obj, obj.get("card")):
        if isinstance(holder, dict):
            for name in ("card_fingerprint", "fingerprint"):
                if isinstance(holder.get(name), str):
                    return holder[name]
    return None


def _stored_card(store, provider, tenant, kinds, obj, own_id):
    """The stored card or token ``obj`` points at: (kind, id, object) or None."""
    for value in obj.values():
        if isinstance(value, str) and value != own_id:
            for other in kinds:
                found = store.get(provider, other, value, tenant)
                if card_like(found):
                    return other, value, found
    return None


def series(sb, index, provider: str, kind: str, id: str, obj: dict, tenant: str) -> dict | None:
    """The recurring series: every object of this kind charged on the same stored card or token.

    Members point at the same stored card (an object carrying a card's last four), or carry the
    same card fingerprint (a declined charge may not keep the link). The customer-initiated
    payment is the one the stored card points back at, unless objects say who initiated them.
    """
    store = sb.store
    group = (provider, tenant, kind)
    kinds = [k for p, t, k, _ in store.groups() if p == provider and t == tenant and k != kind]
    card = _stored_card(store, provider, tenant, kinds, obj, id)
    print_ = fingerprint_of(obj) or (card and fingerprint_of(card[2]))
    if card is None and print_ is None:
        return None
    members = index.related(group, print_, card[1] if card else None)
    if card is None:  # found by fingerprint only: a member that kept the link names the card
        card = next(filter(None, (_stored_card(store, provider, tenant, kinds, store.get(provider, kind, m), m)
                                  for m in members)), None)
    origins = [] if card is None else [
        v for v in card[2].values() if isinstance(v, str) and v not in members
        and store.get(provider, kind, v, tenant) is not None]
    items = []
    for oid in origins + members:
        o = store.get(provider, kind, oid, tenant)
        if o is None:
            continue
        item = summary(sb, provider, kind, oid, o, tenant)
        mit = o.get("merchant_initiated")
        came_first = card is not None and oid in card[2].values()
        item["initiated"] = "customer" if (came_first if mit is None else not mit) else "merchant"
        item["current"] = oid == id
        items.append(item)
    if len(items) < 2:
        return None
    return {"card_kind": card[0] if card else None, "card_id": card[1] if card else None,
            "fingerprint": print_, "payments": items}


def _comes_before(causal, when: datetime | None, queued_at: int | None) -> bool:
    """Whether a request or status change goes before a delivery event at ``when``. A delivery
    queued during request ``queued_at`` follows that request and every status change it made (an
    object may be saved after its webhook is queued: the change is still what the webhook tells)
    and precedes the requests after it; anything else goes by virtual time, after all at the same
    instant."""
    (position, _), at, _ = causal
    return at <= when if queued_at is None else position <= queued_at


def timeline(sb, provider: str, kind: str, id: str, obj: dict, tenant: str) -> list[dict]:
    """Requests, status changes and webhook attempts for one object, oldest first.

    Requests and status changes are kept in the order they happened (journal position); a delivery
    comes right after the request it was queued in (its ``_position``: it is queued while that
    request runs, and the request reaches the journal only once answered, so by virtual time alone,
    on a running clock, it would come before the request that caused it). Attempts, and deliveries
    read back from a state file (whose journal is gone), are merged in by virtual time, after
    anything else at the same instant, because they run after the request that queued them.
    """
    names = aliases(sb, provider, kind, id, obj, tenant)
    causal = []
    for e in sb.journal.entries(provider, mentioning=names):
        # to the millisecond, as deliveries and attempts keep their times: one answered in the
        # millisecond an attempt was made is not after it
        at = iso_z(instant(e["at"]), 3)
        causal.append(((e["seq"], 0), instant(at), {
            "type": "request", "at": at, "method": e["method"], "path": e["path"],
            "status": e["status"], "rules": e["rules"], "tenant": e["tenant"], "verified": e["verified"],
            "request": e["request"], "response": e["response"]}))
    for m in sb.history.transitions(provider, kind, id):
        causal.append(((m["position"], 1), instant(m["at"]), {
            "type": "transition", "at": m["at"], "from": m["from"], "to": m["to"]}))
    causal.sort(key=lambda c: c[0])

    deliveries = []
    for d in sb.outbox.list(provider, tenant):
        if d.get("subject") in names or d.get("event_id") in names or id in d["payload"]:
            deliveries.append(((instant(d["created_at"]), 0), d.get("_position"), {
                "type": "webhook", "at": d["created_at"], "delivery_id": d["id"], "event_type": d["event_type"],
                "url": d["url"], "status": d["status"], "next_attempt_at": d["next_attempt_at"],
                "rules": d.get("rules", []), "payload": masked_payload(d["payload"], d.get("content_type"))}))
            for n, a in enumerate(d["attempts"], 1):
                deliveries.append(((instant(a["at"]), n), None, {
                    "type": "webhook_attempt", "at": a["at"], "delivery_id": d["id"], "event_type": d["event_type"],
                    "attempt": n, "status": a["status"], "error": a["error"], "injected": a.get("injected", False)}))
    deliveries.sort(key=lambda w: w[0])

    out, i = [], 0
    for (when, _n), queued_at, item in deliveries:
        while i < len(causal) and _comes_before(causal[i], when, queued_at):
            out.append(causal[i][2])
            i += 1
        out.append(item)
    out.extend(c[2] for c in causal[i:])
    return mask_json(out)
