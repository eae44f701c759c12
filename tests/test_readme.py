"""The README's five-minute tour is code that runs: executed here on the embedded store."""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def tour_code() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Five-minute tour") :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the README's tour has no python block"
    return match.group(1)


def test_the_readme_tour_runs_on_the_embedded_store(tmp_path):
    code = tour_code()
    assert 'connect("sqlite:///tour.db")' in code
    code = code.replace("sqlite:///tour.db", f"sqlite:///{tmp_path / 'tour.db'}")
    out = io.StringIO()
    cwd = os.getcwd()
    os.chdir(ROOT)  # the tour names schemas/examples/people.toml relative to the checkout
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code, "README.md", "exec"), {"__name__": "readme_tour"})
    finally:
        os.chdir(cwd)
    assert out.getvalue().startswith("Query people where")
