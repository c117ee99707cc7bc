"""Every provider page shows every transition table of its provider, exactly as generated."""
from pathlib import Path

import pytest

from status_tables import ROOT, generated, tables_by_provider

TABLES = tables_by_provider()


@pytest.mark.parametrize("provider", sorted(TABLES))
def test_status_tables_are_generated_from_the_transition_tables(provider):
    page = (ROOT / "docs" / "providers" / f"{provider}.md").read_text()
    regenerated, missing = generated(page, TABLES[provider])
    assert not missing, f"docs/providers/{provider}.md has no status table for {missing}"
    assert page == regenerated, f"docs/providers/{provider}.md is stale: run python3 tests/docs/status_tables.py"


def test_a_stale_table_is_caught():
    provider = sorted(TABLES)[0]
    page = (ROOT / "docs" / "providers" / f"{provider}.md").read_text()
    stale = page.replace("<!-- /status-table -->", "| `made` | up | `by hand` |\n<!-- /status-table -->", 1)
    assert generated(stale, TABLES[provider])[0] != stale
