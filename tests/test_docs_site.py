"""The documentation site builds strictly and renders in a real browser (headless Chromium).

The site is built with ``mkdocs build --strict`` (a broken link or a page left out fails),
served on 127.0.0.1, and read back as the DOM Chromium holds once the page's scripts ran.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def _needs(what: str, found: bool, how: str) -> None:
    if found:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing: {how}")
    pytest.skip(f"{what} is not installed here ({how})")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site as `mkdocs build --strict` writes it."""
    try:
        import mkdocs  # noqa: F401
    except ImportError:
        _needs("mkdocs", False, 'the docs extra installs it: pip install -e ".[docs]"')
    out = tmp_path_factory.mktemp("site")
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    return out


def test_every_guide_is_a_page_of_the_site_and_in_its_nav(site: Path) -> None:
    home = (site / "index.html").read_text()
    guides = sorted((ROOT / "docs" / "guides").glob("*.md"))
    assert len(guides) >= 14
    for guide in guides:
        assert (site / "guides" / guide.stem / "index.html").is_file(), guide.name
        assert f'href="guides/{guide.stem}/"' in home, f"{guide.name} is not in the nav"
    api = (site / "reference" / "langchain_failover" / "index.html").read_text()
    assert "FailoverChatModel" in api and "from_specs" in api, "API pages from the docstrings"


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def browser(tmp_path: Path) -> Callable[[str], str]:
    """The DOM of a page after its scripts ran, as headless Chromium renders it."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    _needs("chromium", chromium is not None, ".ci/run installs Debian's chromium")
    assert chromium is not None

    def dom(url: str) -> str:
        profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
        shot = subprocess.run(
            [
                chromium,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                "--virtual-time-budget=5000",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert shot.returncode == 0, shot.stderr[-2000:]
        return shot.stdout

    return dom


@pytest.mark.timeout(300)
def test_the_home_page_and_a_guide_render_with_a_search_box(
    served: str, browser: Callable[[str], str]
) -> None:
    home = browser(served + "/")
    assert re.search(r"<h1[^>]*>llm-failover", home)
    assert "Why not" in home and 'href="guides/deadlines/"' in home
    assert re.search(r'<input[^>]*class="md-search__input"', home), "the search box"

    guide = browser(served + "/guides/deadlines/")
    assert re.search(r"<h1[^>]*>Deadlines", guide)
    assert "first_token_timeout" in guide and '<div class="highlight">' in guide
    assert re.search(r'<input[^>]*class="md-search__input"', guide)
