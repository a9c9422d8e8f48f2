"""Headless Chromium (the Debian package `chromium`), as a reader's browser: the page after its scripts ran,
and a screenshot. Without Chromium the tests that need it are skipped, unless WAREHOUSE_REQUIRE_BROWSER=1
(CI installs the package and sets it): then they fail."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
         "--virtual-time-budget=30000"]


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    message = "headless Chromium is not installed: apt-get install chromium"
    if os.environ.get("WAREHOUSE_REQUIRE_BROWSER") == "1":
        pytest.fail(message)
    pytest.skip(message)


def rendered_dom(page: Path | str) -> str:
    """The page's DOM after its scripts ran (charts drawn), as the browser holds it: a file, or a URL."""
    where = page if isinstance(page, str) else page.resolve().as_uri()
    done = subprocess.run([chromium(), *FLAGS, "--dump-dom", where], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0 and "</html>" in done.stdout, done.stderr[-2000:]
    return done.stdout


def screenshot(page: Path, out: Path, width: int = 1280, height: int = 2600) -> Path:
    done = subprocess.run([chromium(), *FLAGS, f"--window-size={width},{height}", f"--screenshot={out}",
                           page.resolve().as_uri()], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0 and out.exists(), done.stderr[-2000:]
    return out
