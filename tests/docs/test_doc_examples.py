"""Every Python and shell block in README.md, CONTRIBUTING.md and docs/ runs against a live `python run.py`.

Examples are written for a sandbox on 127.0.0.1:8080, so they can be pasted as they are. Here each
sandbox is started with `--port 0` (tests run in parallel) and every `127.0.0.1:8080` in a block is
replaced by the port it printed. Examples run from the repository root, as a reader's would.

- Python: the blocks of one file run in order as one program (a page is one Python session). Each
  block keeps its line numbers, so a traceback points at the Markdown file and line.
- Shell: each block runs on its own with bash (`set -e`); `curl` fails on any non-2xx answer. The
  install step of a block is not re-run (its extra must exist in pyproject.toml) nor is the
  command that runs the test suite; a command that starts the sandbox is started with a free port,
  must print its banner, and serves the rest of the block.
- A YAML block with top-level `rules:` is a scenario document and must load (`PUT /_sandbox/scenarios`).
- A block preceded by `<!-- no-run -->` is not run; a ```text block preceded by `<!-- banner -->`
  must equal what the server prints on start.
"""
from __future__ import annotations

import dataclasses
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").rglob("*.md"))]
PYTHON = {"python", "py"}
SHELL = {"sh", "bash", "shell"}
DEFAULT_HOST = "127.0.0.1:8080"
START = re.compile(r"^(?:python3?\s+(?:run\.py|-m\s+simulator)|psp-sandbox)(?:\s|$)")
INSTALL = re.compile(r"^python3?\s+-m\s+pip\s+install\b|^pip3?\s+install\b")
TEST_SUITE = re.compile(r"^python3?\s+-m\s+pytest\b|^pytest\b")
# Bounds a hung example, not a speed requirement: a page's whole flow takes a few seconds.
EXAMPLE_TIMEOUT = 120


@dataclasses.dataclass
class Block:
    path: Path
    line: int          # line of the first code line (1-based)
    lang: str
    code: str
    marker: str        # the HTML comment just before the fence, if any

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    found, i = [], 0
    while i < len(lines):
        fence = re.match(r"^(\s*)```(\w*)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        indent, lang, start = len(fence.group(1)), fence.group(2).lower(), i + 1
        prev = next((l.strip() for l in reversed(lines[:i]) if l.strip()), "")
        marker = prev if re.fullmatch(r"<!--\s*[\w-]+\s*-->", prev) else ""
        i += 1
        while i < len(lines) and not re.match(r"^\s*```\s*$", lines[i]):
            i += 1
        code = "\n".join(l[indent:] for l in lines[start:i])
        found.append(Block(path, start + 1, lang, code, marker.strip("<!-> ")))
        i += 1
    return found


ALL = [b for p in DOCS for b in blocks(p)]
RUN = [b for b in ALL if b.marker != "no-run"]
PY_FILES = sorted({b.path for b in RUN if b.lang in PYTHON})
SH_BLOCKS = [b for b in RUN if b.lang in SHELL]
BANNERS = [b for b in ALL if b.marker == "banner"]
SCENARIOS = [b for b in RUN if b.lang in {"yaml", "yml"} and re.search(r"^rules:", b.code, re.M)]


class Sandbox:
    """`python run.py ARGS --port 0` in a subprocess; `host` is what its banner printed."""

    def __init__(self, *args: str):
        # stderr to a file: a pipe nobody reads would stall a server that logs a lot
        self.errors = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen([sys.executable, "run.py", *args, "--port", "0"], cwd=ROOT, text=True,
                                     stdout=subprocess.PIPE, stderr=self.errors)
        self.banner: list[str] = []
        for line in self.proc.stdout:
            self.banner.append(line.rstrip("\n"))
            if line.startswith("Dashboard"):
                break
        else:
            self.proc.wait(timeout=10)
            self.errors.seek(0)
            raise AssertionError(f"`run.py {' '.join(args)}` printed no banner: {self.errors.read()}")
        self.host = re.search(r"http://([\d.]+:\d+)/", self.banner[-1]).group(1)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
        self.errors.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def test_docs_have_examples_and_few_are_exempt():
    assert len(PY_FILES) >= 5 and len(SH_BLOCKS) >= 3
    runnable = [b for b in ALL if b.lang in PYTHON | SHELL]
    exempt = [b.where for b in runnable if b.marker == "no-run"]
    assert len(exempt) <= len(runnable) // 10, f"too many blocks marked no-run: {exempt}"


@pytest.mark.parametrize("path", PY_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_python_examples(path, tmp_path):
    rel = str(path.relative_to(ROOT))
    program = [""] * sum(1 for _ in path.open(encoding="utf-8"))
    for b in RUN:
        if b.path == path and b.lang in PYTHON:
            for n, text in enumerate(b.code.splitlines()):
                program[b.line - 1 + n] = text
    with Sandbox() as sandbox:
        script = tmp_path / "example.py"
        script.write_text("\n".join(program).replace(DEFAULT_HOST, sandbox.host), encoding="utf-8")
        runner = "import sys; exec(compile(open(sys.argv[1]).read(), sys.argv[2], 'exec'), {'__name__': '__main__'})"
        done = subprocess.run([sys.executable, "-c", runner, str(script), rel], cwd=ROOT, text=True,
                              capture_output=True, timeout=EXAMPLE_TIMEOUT)
    if done.returncode:
        lines = re.findall(rf'File "{re.escape(rel)}", line (\d+)', done.stderr)
        where = f"{rel}:{lines[-1]}" if lines else rel
        pytest.fail(f"example at {where} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}", pytrace=False)


def _commands(block: Block) -> list[tuple[int, str]]:
    """(line in the Markdown file, command) for each command of a shell block."""
    out, pending = [], ""
    for n, line in enumerate(block.code.splitlines()):
        if not pending:
            first = block.line + n
        pending += line
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        text, pending = re.sub(r"(^|\s)#.*$", "", pending).strip(), ""
        out += [(first, part.strip()) for part in text.split(" && ") if part.strip()]
    return out


def _extras_exist(command: str) -> None:
    section = (ROOT / "pyproject.toml").read_text().split("[project.optional-dependencies]")[1].split("\n[")[0]
    extras = set(re.findall(r"^([\w-]+)\s*=", section, re.M))
    for spec in re.findall(r"\.\[([\w,]+)\]", command):
        assert set(spec.split(",")) <= extras, f"{command!r} names an extra pyproject.toml lacks"


@pytest.mark.parametrize("block", SH_BLOCKS, ids=lambda b: b.where)
def test_shell_examples(block, tmp_path):
    script, start = [], None
    for line, command in _commands(block):
        if INSTALL.match(command):
            _extras_exist(command)
        elif TEST_SUITE.match(command):
            continue
        elif START.match(command):
            assert start is None, f"{block.where}: two start commands in one block"
            start = shlex.split(START.sub("", command))
        else:
            script.append(f"LINE={line}; {command}")
    with Sandbox(*(start or [])) as sandbox:
        if start is not None:
            assert sandbox.banner[0].startswith("Checkout.com"), f"{block.where}: {sandbox.banner}"
        if not script:
            return
        rel = block.path.relative_to(ROOT)
        prelude = (f"set -Eeuo pipefail\ntrap 'echo \"example at {rel}:$LINE failed\" >&2' ERR\n"
                   'curl() { command curl --fail-with-body -sS "$@"; }\n')
        (tmp_path / "example.sh").write_text(prelude + "\n".join(script).replace(DEFAULT_HOST, sandbox.host) + "\n")
        done = subprocess.run(["bash", str(tmp_path / "example.sh")], cwd=ROOT, text=True, capture_output=True,
                              timeout=EXAMPLE_TIMEOUT)
    if done.returncode:
        pytest.fail(f"{done.stderr[-3000:]}\n{done.stdout[-3000:]}", pytrace=False)


@pytest.mark.parametrize("block", BANNERS, ids=lambda b: b.where)
def test_banner_is_what_the_server_prints(block):
    with Sandbox() as sandbox:
        printed = "\n".join(sandbox.banner).replace(sandbox.host, DEFAULT_HOST)
    assert block.lang == "text"
    assert block.code.strip("\n") == printed, f"{block.where}: banner differs from what run.py prints"


@pytest.mark.parametrize("block", SCENARIOS, ids=lambda b: b.where)
def test_scenario_documents_load(block):
    with Sandbox() as sandbox:
        answer = requests.put(f"http://{sandbox.host}/_sandbox/scenarios", data=block.code.encode(), timeout=30)
    assert answer.status_code == 200, f"{block.where}: {answer.text}"
