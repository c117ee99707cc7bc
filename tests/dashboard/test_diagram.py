"""State diagrams drawn from the providers' transition tables."""
import xml.etree.ElementTree as ET

from simulator.admin import diagram
from simulator.providers.shape import Transitions
from simulator.testing import SandboxServer


def test_every_provider_has_a_diagram():
    with SandboxServer({"seed": 1}) as srv:
        found = {name: [t.name for t in diagram.tables(p)] for name, p in srv.sandbox.providers.items()}
    assert all(found.values()), found
    assert found["bank131"] == ["session", "payment", "refund"]


def test_a_new_providers_tables_are_drawn_on_their_own():
    class Offered:
        def state_tables(self):
            return [Transitions("mandate", "pending", {("pending", "accept"): "active"})]
    [t] = diagram.tables(Offered())
    assert (t.name, t.initial, t.states, t.edges) == ("mandate", "pending", ["pending", "active"],
                                                       [("pending", "accept", "active")])


def test_svg_marks_the_current_state_and_the_path_and_escapes_names():
    t = diagram.table_of(Transitions("odd", "new", {("new", "go<"): "mid&", ("mid&", "on"): "<end>",
                                                    ("new", "skip"): "<end>", ("<end>", "again"): "<end>"}))
    walked = diagram.path_taken(t, [{"from": None, "to": "mid&"}, {"from": "mid&", "to": "<end>"}])
    assert walked == {("new", "mid&"), ("mid&", "<end>")}
    root = ET.fromstring(str(diagram.svg(t, "<end>", walked)))   # well-formed: every name escaped
    ns = {"s": "http://www.w3.org/2000/svg"}
    current = [g for g in root.iterfind("s:g", ns) if "current" in g.get("class")]
    assert [g.get("data-state") for g in current] == ["<end>"]
    assert sorted(g.find("s:text", ns).text for g in root.iterfind("s:g", ns) if "walked" in g.get("class")) == \
        ["go<", "on"]


def test_path_fills_in_moves_made_between_two_writes():
    t = diagram.table_of(Transitions("p", "Requested", {
        ("Requested", "approve"): "Authorized", ("Authorized", "capture"): "Captured",
        ("Requested", "decline"): "Declined"}))
    assert diagram.path_taken(t, [{"from": None, "to": "Captured"}]) == {("Requested", "Authorized"),
                                                                          ("Authorized", "Captured")}
