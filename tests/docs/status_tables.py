"""The status tables in docs/providers/<name>.md are generated from the providers' transition
tables, never written by hand. ``python3 tests/docs/status_tables.py`` rewrites every block
between ``<!-- status-table: <object> -->`` and ``<!-- /status-table -->``; the test beside this
file fails when a page and its provider's tables disagree."""
from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"(<!-- status-table: (?P<name>[^>]+?) -->\n)(?P<body>.*?)(<!-- /status-table -->)", re.S)


def key(name: str) -> str:
    return re.sub(r"[\s_-]+", "-", name.strip().lower())


def tables_by_provider() -> dict[str, dict]:
    from simulator.providers import provider_classes
    return {cls.name: {key(t.name): t for t in cls.state_tables()} for cls in provider_classes()}


def generated(page: str, tables: dict) -> tuple[str, list[str]]:
    """The page with every marked block regenerated, and the tables it has no block for."""
    from simulator.providers.shape import status_table
    seen = set()

    def block(m: re.Match) -> str:
        table = tables.get(key(m["name"]))
        if table is None:
            raise KeyError(f"no transition table called {m['name']!r}")
        seen.add(key(m["name"]))
        return m.group(1) + status_table(table) + "\n" + m.group(4)

    return BLOCK.sub(block, page), sorted(set(tables) - seen)


def main() -> int:
    sys.path.insert(0, str(ROOT))
    for provider, tables in tables_by_provider().items():
        path = ROOT / "docs" / "providers" / f"{provider}.md"
        page, missing = generated(path.read_text(), tables)
        path.write_text(page)
        for name in missing:
            print(f"{path.relative_to(ROOT)}: add a block <!-- status-table: {name} --> <!-- /status-table -->")
    return 0


if __name__ == "__main__":
    sys.exit(main())
