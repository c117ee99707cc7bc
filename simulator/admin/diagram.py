"""State diagrams as SVG, generated on the server from the providers' transition tables.

``tables(provider)`` reads ``provider.state_tables()`` (the shared ``Transitions`` form), so a
new provider's tables show up on their own.

The layout is layered: a state's column is its distance from the initial state, so the usual
path reads left to right; edges to the same or an earlier column bend around.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from markupsafe import Markup, escape


@dataclass
class Table:
    name: str
    initial: str
    states: list[str]
    edges: list[tuple[str, str, str]] = field(default_factory=list)


# -- reading the tables -----------------------------------------------------------------------

def table_of(transitions) -> Table:
    """A provider's ``Transitions`` as the drawing reads it."""
    return Table(transitions.name, transitions.initial, transitions.states,
                 [(state, event, target) for (state, event), target in transitions.edges.items()])


def tables(provider) -> list[Table]:
    return [table_of(t) for t in provider.state_tables()]


def table_for(provider, kind: str, status: str | None):
    """The table that describes an object of ``kind`` currently in ``status``."""
    candidates = tables(provider)
    for t in candidates:
        if t.name == kind:
            return t
    return next((t for t in candidates if status in t.states), None)


# -- the path an object took ------------------------------------------------------------------

def _shortest(table, start: str, goal: str) -> list[tuple[str, str]]:
    if start == goal:
        return []
    prev: dict[str, str] = {start: start}
    todo = deque([start])
    while todo:
        s = todo.popleft()
        for a, _, b in table.edges:
            if a == s and b not in prev:
                prev[b] = s
                if b == goal:
                    path = [(s, b)]
                    while path[0][0] != start:
                        path.insert(0, (prev[path[0][0]], path[0][0]))
                    return path
                todo.append(b)
    return []


def path_taken(table, moves: list[dict]) -> set[tuple[str, str]]:
    """Edges (from, to) walked by an object, from its recorded status changes.

    Several moves can happen between two writes of an object, so each recorded change is filled in
    with the shortest route through the table.
    """
    walked: set[tuple[str, str]] = set()
    for move in moves:
        start = move["from"] if move["from"] is not None else table.initial
        if move["from"] == move["to"] and any(a == b == start for a, _, b in table.edges):
            walked.add((start, start))
        walked.update(_shortest(table, start, move["to"]))
    return walked


# -- drawing ----------------------------------------------------------------------------------

GAP, ROW, PAD, NODE_H, CHAR_W = 120, 56, 24, 30, 7.2


def _layers(table) -> dict[str, int]:
    """Column of each state: the longest route to it from the initial state, cycles ignored."""
    forward: dict[str, list[str]] = {}
    on_path, done = set(), set()

    def visit(s):  # drop the edges that close a cycle, keep the rest as a DAG
        on_path.add(s)
        for a, _, b in table.edges:
            if a == s and b != s and b not in on_path:
                forward.setdefault(s, []).append(b)
                if b not in done:
                    visit(b)
        on_path.discard(s)
        done.add(s)

    visit(table.initial)
    depth = {table.initial: 0}
    for s in _topological(table.initial, forward):
        for b in forward.get(s, ()):
            depth[b] = max(depth.get(b, 0), depth[s] + 1)
    last = max(depth.values(), default=0) + 1
    for s in table.states:
        depth.setdefault(s, last)
    return depth


def _topological(start: str, forward: dict[str, list[str]]) -> list[str]:
    order, seen = [], set()

    def visit(s):
        seen.add(s)
        for b in forward.get(s, ()):
            if b not in seen:
                visit(b)
        order.append(s)

    visit(start)
    return order[::-1]


def _rows(table, depth) -> dict[int, list[str]]:
    """States per column, each column ordered by where its states' predecessors stand."""
    columns: dict[int, list[str]] = {}
    for s in table.states:
        columns.setdefault(depth[s], []).append(s)
    row: dict[str, float] = {}
    for col in sorted(columns):
        def centre(s, col=col):
            before = [row[a] for a, _, b in table.edges if b == s and a in row and depth[a] < col]
            return sum(before) / len(before) if before else float(table.states.index(s))
        columns[col].sort(key=centre)
        row.update({s: i for i, s in enumerate(columns[col])})
    return columns


def svg(table, current: str | None = None, walked: set[tuple[str, str]] = frozenset()) -> Markup:
    depth = _layers(table)
    columns = _rows(table, depth)
    pos, x = {}, PAD
    for col in sorted(columns):  # each column as wide as its widest state, then room for labels
        for row, s in enumerate(columns[col]):
            pos[s] = (x, PAD + 70 + row * ROW)
        x += max(_width(s) for s in columns[col]) + GAP
    width = x + PAD
    height = PAD * 2 + 90 + max(len(v) for v in columns.values()) * ROW
    labels: dict[tuple[str, str], list[str]] = {}
    for a, event, b in table.edges:
        labels.setdefault((a, b), []).append(event)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="diagram" role="img" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}">',
           f'<title>{escape(table.name)} states</title>',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
           'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="context-stroke"/></marker></defs>']
    arcs: dict[str, int] = {}
    for (a, b), events in labels.items():
        (x1, y1), (x2, y2) = pos[a], pos[b]
        cls = "edge walked" if (a, b) in walked else "edge"
        text = escape(", ".join(events))
        w1 = _width(a)
        if a == b:
            d = f"M{x1 + 20},{y1} C{x1 + 20},{y1 - 28} {x1 + 60},{y1 - 28} {x1 + 60},{y1}"
            lx, ly = x1 + 40, y1 - 24
        elif depth[b] == depth[a] + 1:
            sx, sy, ex, ey = x1 + w1, y1 + NODE_H / 2, x2, y2 + NODE_H / 2
            d = f"M{sx},{sy} C{sx + 40},{sy} {ex - 40},{ey} {ex},{ey}"
            lx, ly = (sx + ex) / 2, (sy + ey) / 2 - 4
        elif depth[b] > depth[a]:  # skips columns: arc over the states in between
            sx, sy, ex, ey = x1 + w1 / 2, y1, x2 + _width(b) / 2, y2
            arcs[a] = arcs.get(a, 0) + 1  # arcs from one state nest instead of overlapping
            top = min(sy, ey) - 12 * (depth[b] - depth[a]) - 14 * arcs[a]
            d = f"M{sx},{sy} C{sx},{top} {ex},{top} {ex},{ey}"
            lx, ly = (sx + ex) / 2, top + 8
        else:  # same column or backwards: bend below
            sx, sy, ex, ey = x1 + w1 / 2, y1 + NODE_H, x2 + _width(b) / 2, y2 + NODE_H
            dip = max(sy, ey) + 26
            d = f"M{sx},{sy} C{sx},{dip} {ex},{dip} {ex},{ey}"
            lx, ly = (sx + ex) / 2, dip - 2
        out.append(f'<g class="{cls}"><path d="{d}" fill="none" marker-end="url(#arrow)"/>'
                   f'<text x="{lx:.0f}" y="{ly:.0f}" text-anchor="middle">{text}</text></g>')
    for s in table.states:
        x, y = pos[s]
        cls = ["state"]
        if s == current:
            cls.append("current")
        if s == table.initial:
            cls.append("initial")
        if any(s in pair for pair in walked):
            cls.append("visited")
        out.append(f'<g class="{" ".join(cls)}" data-state="{escape(s)}"><rect x="{x}" y="{y}" width="{_width(s)}" '
                   f'height="{NODE_H}" rx="6"/><text x="{x + _width(s) / 2}" y="{y + 19}" '
                   f'text-anchor="middle">{escape(s)}</text></g>')
    out.append("</svg>")
    return Markup("".join(out))


def _width(state: str) -> float:
    return max(70.0, len(state) * CHAR_W + 20)
