"""Every ```python and ```bash block of README.md and docs/ runs, as a reader would run it.

A page's Python blocks run in order in one fresh interpreter (later blocks use what earlier ones defined), then its
shell blocks one by one, offline, in one scratch folder per page laid out like a checkout (``modeling``, ``examples``,
``benchmarks``, ``hub_cards`` and ``../shared`` link to the real ones), so a shell block may use what the page's Python
wrote. A block states what it claims with ``assert`` lines.

A comment on the line(s) just before a block's fence changes how it runs:

- ``<!-- docs-test: smoke OLD => NEW -->``: replace OLD by NEW first (a run of hours at seconds' scale);
- ``<!-- docs-test: skip REASON -->``: do not run it (installs packages, needs the Hub or a GPU); REASON is required.

Blocks that read ``../shared/data`` are skipped, with that reason, where the shared data is absent.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import SHARED_DATA

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LANGUAGES = {"python": "python", "bash": "bash", "sh": "bash", "shell": "bash"}
FENCE = re.compile(r"^```(\w+)?\s*$")
MARKER = re.compile(r"^<!--\s*docs-test:\s*(smoke|skip)\s*(.*?)\s*-->\s*$")
LINKED = ("modeling", "examples", "benchmarks", "hub_cards")
TIMEOUT = 300  # seconds per block (page, for Python); a block that needs more gets a smoke marker


@dataclass
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    language: str
    code: str
    smoke: list[tuple[str, str]] = field(default_factory=list)
    skip: str | None = None

    @property
    def label(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    def text(self) -> str:
        code = self.code
        for old, new in self.smoke:
            if old not in code:
                raise AssertionError(f"{self.label}: smoke marker replaces {old!r}, which the block does not contain")
            code = code.replace(old, new)
        return code


def read_blocks(page: Path) -> list[Block]:
    """The fenced code blocks of ``page`` in a runnable language, with the markers just above each."""
    lines, blocks, i = page.read_text().splitlines(), [], 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), None)
        if end is None:
            raise AssertionError(f"{page}:{i + 1}: a code block is never closed")
        language = LANGUAGES.get((match.group(1) or "").lower())
        if language:
            block = Block(page, i + 1, language, "\n".join(lines[i + 1 : end]) + "\n")
            k = i - 1
            while k >= 0 and (marker := MARKER.match(lines[k].strip())):
                kind, argument = marker.groups()
                if kind == "skip":
                    if not argument:
                        raise AssertionError(f"{page}:{k + 1}: a skip marker needs a reason")
                    block.skip = argument
                else:
                    old, arrow, new = argument.partition("=>")
                    if not arrow or not old.strip():
                        raise AssertionError(f"{page}:{k + 1}: expected <!-- docs-test: smoke OLD => NEW -->")
                    block.smoke.append((old.strip(), new.strip()))
                k -= 1
            blocks.append(block)
        i = end + 1
    return blocks


BLOCKS = [block for page in PAGES for block in read_blocks(page)]


@pytest.fixture(scope="session")
def checkout(tmp_path_factory):
    """``checkout(page)``: the page's scratch working folder, shaped like the repository root (the examples' relative
    paths resolve, and what the blocks write stays out of the repository); one per page, shared by its blocks."""
    folders: dict[Path, Path] = {}

    def folder(page: Path) -> Path:
        if page not in folders:
            root = tmp_path_factory.mktemp(page.stem)
            work = root / "work"
            work.mkdir()
            for name in LINKED:
                (work / name).symlink_to(ROOT / name)
            if SHARED_DATA.exists():
                (root / "shared").symlink_to(SHARED_DATA.parent)
            folders[page] = work
        return folders[page]

    return folder


def _environment() -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1", MPLBACKEND="Agg")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return env


def _run(command: list[str], cwd: Path, what: str) -> None:
    done = subprocess.run(command, cwd=cwd, env=_environment(), capture_output=True, text=True, timeout=TIMEOUT)
    if done.returncode != 0:
        raise AssertionError(f"{what} failed (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def _skip_reason(blocks: list[Block]) -> str | None:
    if all(b.skip for b in blocks):
        return "; ".join(sorted({b.skip for b in blocks}))
    if not SHARED_DATA.exists() and any("../shared/data" in b.code for b in blocks if not b.skip):
        return f"reads ../shared/data, which is absent here ({SHARED_DATA})"
    return None


PYTHON_PAGES = sorted({b.page for b in BLOCKS if b.language == "python"})
SHELL_BLOCKS = [b for b in BLOCKS if b.language == "bash"]


_PYTHON_RAN: set[Path] = set()  # pages whose Python blocks ran in their scratch folder this session


def _python_blocks(page: Path, folder: Path) -> None:
    """Run the page's Python blocks once per session (a shell block may need what they write)."""
    if page in _PYTHON_RAN:
        return
    blocks = [b for b in BLOCKS if b.page == page and b.language == "python" and not b.skip]
    script = "".join(f"# --- {b.label}\n{b.text()}\n" for b in blocks)
    (folder / "docs_blocks.py").write_text(script)
    _run([sys.executable, "docs_blocks.py"], folder, f"the Python blocks of {page.relative_to(ROOT)}")
    _PYTHON_RAN.add(page)


@pytest.mark.parametrize("page", PYTHON_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_python_blocks_of_a_page_run_in_order(page, checkout):
    if reason := _skip_reason([b for b in BLOCKS if b.page == page and b.language == "python"]):
        pytest.skip(reason)
    _PYTHON_RAN.discard(page)
    _python_blocks(page, checkout(page))


@pytest.mark.parametrize("block", SHELL_BLOCKS, ids=lambda b: b.label)
def test_shell_block_runs(block, checkout):
    if reason := _skip_reason([block]):
        pytest.skip(reason)
    if block.page in PYTHON_PAGES and not _skip_reason([b for b in BLOCKS if b.page == block.page and b.language == "python"]):
        _python_blocks(block.page, checkout(block.page))
    _run(["bash", "-euo", "pipefail", "-c", block.text()], checkout(block.page), f"the shell block at {block.label}")


def test_every_page_with_code_is_read_and_markers_are_well_formed():
    """The markers parse (a malformed one raises at collection), and no runnable block hides behind another language."""
    assert PAGES[0].name == "README.md" and BLOCKS
    for page in PAGES:
        for number, line in enumerate(page.read_text().splitlines(), start=1):
            if "docs-test" in line:
                assert MARKER.match(line.strip()), f"{page.relative_to(ROOT)}:{number}: malformed docs-test marker {line!r}"
