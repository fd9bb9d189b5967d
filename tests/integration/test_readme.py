"""The README's first screen works as written: its curl lines, run by curl against a real uvicorn server.

The first screen is the README up to its "### Search page" heading: what the project is, the two commands (make
run, make test), three curl lines against localhost:8000 and the layout. Each curl line is run as written, with
only the address replaced by the test server's (127.0.0.1 and a free port, serving the demo model), and must
answer 200 with a JSON body.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from servers import ROOT, uvicorn_server

README = ROOT / "README.md"
ADDRESS = "localhost:8000"


def first_screen() -> str:
    """The README up to its first subsection after the quick start."""
    text = README.read_text(encoding="utf-8")
    return text[:text.index("### Search page")]


def curl_lines() -> list[str]:
    """The curl commands of the first screen, as written (without their trailing comments)."""
    lines: list[str] = []
    in_block = False
    for line in first_screen().splitlines():
        if line.startswith("```"):
            in_block = not in_block
        elif in_block and line.startswith("curl "):
            lines.append(line)
    return lines


def test_the_first_screen_has_the_two_commands_three_curl_lines_and_the_layout() -> None:
    screen = first_screen()
    assert "make run" in screen and "make test" in screen
    assert len(curl_lines()) == 3
    for folder in ("src/legalsearch/", "tests/", "configs/", "docs/", "bench/"):
        assert f"\n{folder}" in screen, folder
    assert len(screen.splitlines()) <= 60, "the first screen grew past a screen"


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_every_curl_line_answers_200_with_json(demo_models_dir: Path) -> None:
    with uvicorn_server(demo_models_dir) as base:
        for line in curl_lines():
            args = shlex.split(line, comments=True)
            assert args[0] == "curl" and any(ADDRESS in a for a in args), line
            args = [a.replace(ADDRESS, base.removeprefix("http://")) for a in args]
            # the status and media type after the body, on a line of their own
            done = subprocess.run([*args, "--max-time", "60", "--write-out", "\n%{http_code} %{content_type}"],
                                  capture_output=True, timeout=90, check=False)
            assert done.returncode == 0, (line, done.stderr.decode(errors="replace"))
            body, _, tail = done.stdout.decode().rpartition("\n")
            status, _, content_type = tail.partition(" ")
            assert status == "200", (line, status, body[:300])
            assert content_type.startswith("application/json"), (line, content_type)
            assert isinstance(json.loads(body), dict), line
