"""Every body the provider sends: the payment resource and webhook payloads."""
from simulator.core.clock import iso_z


def payment(pay: dict) -> dict:
    body = {"id": pay["id"], "status": pay["status"], "amount": pay["amount"], "currency": pay["currency"],
            "created_at": iso_z(pay["created_at"])}
    if pay.get("decline_code"):
        body["decline_code"] = pay["decline_code"]
    return body


def webhook(event: str, pay: dict) -> dict:
    return {"type": event, "data": payment(pay)}
