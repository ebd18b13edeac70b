""".ci/run: its first job is the README's test command verbatim; its second runs the suite on the core
install (no SDV extra, so pip resolves the pandas users get) and refuses to run if SDV slipped in."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _commands(text: str) -> list[str]:
    """Shell lines of .ci/run that do work (comments, blanks, set/cd/deactivate and the heredoc left out)."""
    body = re.sub(r"<<'EOF'\n.*?\nEOF\n", "<<'EOF'\n", text, flags=re.S)
    skip = ("#", "set ", "cd ", "deactivate")
    return [line for line in body.splitlines() if line.strip() and not line.startswith(skip)]


def test_first_ci_job_is_the_readme_test_command() -> None:
    readme = (REPO / "README.md").read_text()
    block = readme[readme.index("Install and run the tests"):]
    command = re.search(r"```bash\n(.+?)\n```", block, flags=re.S)[1].strip()
    assert _commands((REPO / ".ci" / "run").read_text())[0] == command


def test_second_ci_job_runs_the_suite_on_the_core_install() -> None:
    commands = _commands((REPO / ".ci" / "run").read_text())
    assert len(commands) == 4, commands  # dev job; core venv + install; SDV check (heredoc); pytest
    install, check, run = commands[1:]
    assert install.startswith("python3 -m venv .venv-core && . .venv-core/bin/activate")
    assert "pip install -e . pytest scikit-learn" in install and "[dev]" not in install and "sdv" not in install
    assert check.startswith("python - <<'EOF'")
    text = (REPO / ".ci" / "run").read_text()
    assert "find_spec('sdv') is not None" in text and "raise SystemExit" in text
    assert run == "python -m pytest"  # the same selection as the first job; SDV tests skip themselves
