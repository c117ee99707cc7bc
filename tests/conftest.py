"""SANDBOX_TEST_HOT=N runs the suite with only N objects kept live in every store (the rest
compacted), to prove nothing relies on a stored dict staying the same object without a ``put``."""
import os
import shutil

import pytest

from simulator.core.store import MemoryStore

if os.environ.get("SANDBOX_TEST_HOT"):
    MemoryStore.HOT = int(os.environ["SANDBOX_TEST_HOT"])


class StoreReads(list):
    """The names of the store's read methods called, in order; ``keys`` the objects they read."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: list[tuple[str, str, str]] = []

    def clear(self) -> None:
        super().clear()
        self.keys.clear()


@pytest.fixture
def store_reads(monkeypatch):
    """``watch(store, *methods)``: a ``StoreReads`` of every call of the store's ``methods``
    (``_live``, ``_thaw`` and ``_peek`` unless named), for tests that a request reads what it
    needs and no more of a large store."""
    def watch(store, *methods) -> StoreReads:
        reads = StoreReads()
        for name in methods or ("_live", "_thaw", "_peek"):
            def spy(key, *rest, _method=getattr(store, name), _name=name):
                reads.append(_name)
                reads.keys.append(key)
                return _method(key, *rest)
            monkeypatch.setattr(store, name, spy)
        return reads
    return watch


@pytest.fixture(scope="module")
def contract_checked(request):
    """Every response the module's sandboxes give is checked against its provider's OpenAPI
    document as the module's own tests run (the ``tests.contracts.recorder`` plugin does the same
    for a whole run). A module using it marks itself ``xdist_group``, so one worker sees all of its
    responses and the count below is the module's."""
    from contracts.contract_check import ContractChecker

    provider = os.path.basename(os.path.dirname(str(request.path)))
    checker = ContractChecker()
    undo = checker.install_on_new_apps()
    yield
    undo()
    assert checker.problems == [], "\n".join(checker.problems)
    answers = {k: n for k, n in checker.checked.items() if k.startswith(provider + " ")}
    assert sum(answers.values()) >= 20, f"{provider}: too few responses checked: {answers}"
    assert any(k.endswith((" 200", " 201")) for k in answers), answers


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium, one per test process: starting it takes about two seconds, once per module
    it took a dozen in a run. Each test opens a context of its own, so none sees another's pages."""
    playwright = pytest.importorskip("playwright.sync_api")
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    with playwright.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield b
        b.close()
