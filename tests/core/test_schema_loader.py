"""The shared loader validates a request exactly as a whole schema instance does."""
import importlib
import inspect
import json
import random

from marshmallow import Schema, ValidationError

from simulator.providers import REGISTERED
from simulator.providers.shape import schema, walk

VALUES = [None, 0, 1, -1, 10 ** 20, 1.5, True, "", "x", "EUR", "2026-01-01T00:00:00Z", "4242424242424242",
          "src_" + "a" * 26, "https://shop.example/a", "a@b.co", "12/30", [], [1], {}, {"type": "card"},
          {"type": "id", "id": "src_" + "a" * 26}, {"method": "card", "number": "4111111111111111"}, "card", "id"]


def outcome(loader, data):
    try:
        return "ok", json.dumps(loader.load(data), default=str)
    except ValidationError as exc:
        return "invalid", list(walk(exc.messages)), json.dumps(exc.valid_data, default=str)


def test_a_subset_of_fields_loads_as_the_whole_schema():
    rng = random.Random(5)
    classes = sorted({c for name in REGISTERED
                      for _, c in inspect.getmembers(importlib.import_module(f"simulator.providers.{name}.schemas"),
                                                     inspect.isclass)
                      if issubclass(c, Schema) and c.__module__.endswith(f"{name}.schemas")},
                     key=lambda c: (c.__module__, c.__name__))
    assert len(classes) > 20
    for cls in classes:
        whole = cls()
        keys = [f.data_key or name for name, f in whole.load_fields.items()]
        for _ in range(40):
            data = {k: rng.choice(VALUES) for k in rng.sample(keys, rng.randint(0, len(keys)))}
            if rng.random() < 0.3:
                data["not_a_field"] = 1
            assert outcome(schema(cls), data) == outcome(whole, data), (cls.__name__, data)


def test_no_schema_is_built_for_a_request_after_the_first_of_its_shape(monkeypatch):
    # building a schema instance deep-copies every declared field: per request it cost a third of a
    # Checkout payment's time
    from simulator.providers.checkout.schemas import PaymentRequestSchema as PaymentRequest

    mit = {"source": {"type": "id", "id": "src_" + "a" * 26}, "amount": 1000, "currency": "EUR",
           "payment_type": "Recurring", "merchant_initiated": True}
    schema(PaymentRequest).load(mit)
    built = []
    real = Schema.__init__

    def counting(self, *args, **kwargs):
        built.append(type(self).__name__)
        real(self, *args, **kwargs)
    monkeypatch.setattr(Schema, "__init__", counting)
    for _ in range(3):
        schema(PaymentRequest).load(mit)
    assert built == []
