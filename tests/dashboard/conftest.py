"""Dashboard tests: Debian's Chromium driven by Playwright, screenshots kept as artifacts.

Screenshots go to $SANDBOX_ARTIFACTS/<test name>/ when that is set, else under the test's tmp_path.
"""
import os
import re
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
for sub in ("checkout", "paysera", "zafapay", "bank131"):
    sys.path.insert(0, os.path.join(HERE, "..", sub))


@pytest.fixture
def page(browser):
    """A page with JavaScript off: every dashboard form must work as plain HTML."""
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1400, "height": 900})
    yield context.new_page()
    context.close()


@pytest.fixture
def shots(request, tmp_path):
    """shot(page, name): save a full-page screenshot of what the test sees."""
    root = os.environ.get("SANDBOX_ARTIFACTS")
    folder = os.path.join(root, re.sub(r"[^\w.-]", "_", request.node.name)) if root else str(tmp_path / "screenshots")
    os.makedirs(folder, exist_ok=True)
    taken = []

    def shot(pg, name):
        path = os.path.join(folder, f"{len(taken) + 1:02d}-{name}.png")
        pg.screenshot(path=path, full_page=True)
        taken.append(path)
        return path

    shot.taken = taken
    return shot
