"""State diagrams drawn from transition tables, whatever shape a provider keeps them in."""
import xml.etree.ElementTree as ET

import pytest

from simulator.admin import diagram
from simulator.testing import SandboxServer

EDGES = {("new", "pay"), ("paid", "refund")}


@pytest.mark.parametrize("table", [
    {("new", "pay"): "paid", ("paid", "refund"): "refunded"},            # (state, event) -> state
    {"new": {"pay": "paid"}, "paid": {"refund": "refunded"}, "refunded": {}},   # state -> {event: state}
    {"pay": {"new": "paid"}, "refund": {"paid": "refunded"}},            # event -> {state: state}
])
def test_every_table_shape_reads_the_same(table):
    t = diagram.table_from("payment", table)
    assert t.initial == "new"
    assert sorted(t.edges) == [("new", "pay", "paid"), ("paid", "refund", "refunded")]
    assert sorted(t.states) == ["new", "paid", "refunded"]


@pytest.mark.parametrize("value", [{"a": "b"}, {"x": 1}, [], {}, {("a", "b"): 3}])
def test_other_constants_are_not_tables(value):
    assert diagram.table_from("x", value) is None


def test_every_provider_has_a_diagram():
    with SandboxServer({"seed": 1}) as srv:
        found = {name: [t.name for t in diagram.tables(p)] for name, p in srv.sandbox.providers.items()}
    assert all(found.values()), found
    assert found["bank131"] == ["session", "payment", "refund"]


def test_a_provider_offering_its_own_tables_is_used():
    class Offered:
        def state_tables(self):
            return [diagram.Table("mandate", "pending", ["pending", "active"], [("pending", "accept", "active")])]
    assert [t.name for t in diagram.tables(Offered())] == ["mandate"]


def test_svg_marks_the_current_state_and_the_path_and_escapes_names():
    t = diagram.table_from("odd", {("new", "go<"): "mid&", ("mid&", "on"): "<end>", ("new", "skip"): "<end>",
                                   ("<end>", "again"): "<end>"})
    walked = diagram.path_taken(t, [{"from": None, "to": "mid&"}, {"from": "mid&", "to": "<end>"}])
    assert walked == {("new", "mid&"), ("mid&", "<end>")}
    root = ET.fromstring(str(diagram.svg(t, "<end>", walked)))   # well-formed: every name escaped
    ns = {"s": "http://www.w3.org/2000/svg"}
    current = [g for g in root.iterfind("s:g", ns) if "current" in g.get("class")]
    assert [g.get("data-state") for g in current] == ["<end>"]
    assert sorted(g.find("s:text", ns).text for g in root.iterfind("s:g", ns) if "walked" in g.get("class")) == \
        ["go<", "on"]


def test_path_fills_in_moves_made_between_two_writes():
    t = diagram.table_from("p", {("Requested", "approve"): "Authorized", ("Authorized", "capture"): "Captured",
                                 ("Requested", "decline"): "Declined"})
    assert diagram.path_taken(t, [{"from": None, "to": "Captured"}]) == {("Requested", "Authorized"),
                                                                          ("Authorized", "Captured")}
