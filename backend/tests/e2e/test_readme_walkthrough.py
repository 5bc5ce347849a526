"""The README's curl walk-through works when pasted as is.

Its two shell blocks under "Try it" run in bash, unchanged but for the address, against
a live `chitram serve`: the anonymous upload, download, thumbnail (polled until ready)
and delete, then the account, an owned upload, an API key and the listing."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.accounts import TEST_JWT_SECRET
from tests.support.server import live_server

README = Path(__file__).resolve().parents[3] / "README.md"
BASE_LINE = re.compile(r"^base=http://127\.0\.0\.1:8000\b.*$", re.MULTILINE)


def _walkthrough() -> str:
    text = README.read_text()
    section = text[text.index("## Try it") :]
    section = section[: section.index("\n## ", 1)]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
    assert len(blocks) == 2, "the walk-through is two shell blocks under 'Try it'"
    script = "\n".join(blocks)
    assert BASE_LINE.search(script), "the walk-through sets `base` to make run's address"
    return script


def test_the_readme_walkthrough_runs_as_pasted(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    env = {"DATA_DIR": str(tmp_path / "data"), "ENVIRONMENT": "test", "JWT_SECRET": TEST_JWT_SECRET}
    work = tmp_path / "shell"
    work.mkdir()
    with live_server(env, tmp_path) as server:
        script = BASE_LINE.sub(f"base={server.url}", _walkthrough())
        result = subprocess.run(
            ["bash", "-e", "-u", "-o", "pipefail", "-c", script],
            cwd=work,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "204" in lines  # the anonymous upload deleted with its delete URL
    assert lines[lines.index("204") + 1] == "404"  # and gone at once
    assert (work / "back.png").read_bytes() == (work / "photo.png").read_bytes()
    thumbnail = work / "thumb.webp"
    assert thumbnail.read_bytes()[8:12] == b"WEBP"  # polled until the thumbnail was ready
    listing = lines[-1].replace(" ", "")
    assert '"next_cursor"' in listing
    assert '"items":[{' in listing  # the owned upload, listed with the API key
