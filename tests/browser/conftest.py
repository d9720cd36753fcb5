"""Browser tests: Playwright's sync API driving Debian's chromium (never a browser Playwright downloads).

The browser is Debian's package (`/usr/bin/chromium`); when it is missing and we run as root with apt-get, the
fixture installs it, so CI on a fresh machine gets it too. `CHROMIUM_PATH` points at another chromium (then
nothing is installed). Without a browser the tests are skipped, or fail when `CI=true`.

Playwright's sync API keeps an asyncio loop running in the main thread while the browser is open, so Django's
ORM would raise SynchronousOnlyOperation in test bodies and fixtures: DJANGO_ALLOW_ASYNC_UNSAFE is set while the
browser runs, and the browser is package-scoped (closed after the last test under tests/browser/) so tests in
other packages run without that loop and without that setting.
"""

import os
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

REPO = Path(__file__).resolve().parents[2]
DEBIAN_CHROMIUM = "/usr/bin/chromium"
INSTALL_HINT = "apt-get install chromium (as root), or set CHROMIUM_PATH to a chromium executable"
APT_TIMEOUT_SECONDS = 15 * 60
# Without the background-networking flags Chromium's own connections are refused on the closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
VIEWPORT = {"width": 1400, "height": 900}  # the width the admin must fit
TIMEOUT_MS = 15_000


def _unavailable(reason):
    """In CI (CI=true) a missing browser is a failure; elsewhere the browser tests are skipped."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"Browser tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(f"Browser tests skipped: {reason}")


def _say(config, line):
    """One line on the terminal, past pytest's output capture."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(line)
    else:
        print(line, flush=True)


def _apt_install_chromium(config):
    """Install Debian's chromium quietly; returns None on success, else why it failed."""
    _say(
        config,
        f"Installing Debian's chromium for the browser tests (apt-get, up to {APT_TIMEOUT_SECONDS // 60} min)...",
    )
    deadline = time.monotonic() + APT_TIMEOUT_SECONDS
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    commands = [
        ["apt-get", "-qq", "-o", "DPkg::Lock::Timeout=300", "update"],
        ["apt-get", "-qq", "-o", "DPkg::Lock::Timeout=300", "install", "-y", "--no-install-recommends", "chromium"],
    ]
    for command in commands:
        try:
            done = subprocess.run(
                command,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=max(1.0, deadline - time.monotonic()),
            )
        except subprocess.TimeoutExpired:
            return f"`{' '.join(command)}` did not finish within {APT_TIMEOUT_SECONDS // 60} minutes"
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip()[-800:]
            return f"`{' '.join(command)}` failed (exit {done.returncode}): {tail}"
    return None


def _executable(path):
    return os.path.isfile(path) and os.access(path, os.X_OK)


@pytest.fixture(scope="session")
def chromium_executable(request):
    """The path of the chromium the tests drive: $CHROMIUM_PATH, else Debian's, installed if need be."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as error:
        _unavailable(f"Playwright is not installed ({error}); pip install -r requirements-dev.txt -c constraints.txt")

    override = os.environ.get("CHROMIUM_PATH")
    if override:
        if not _executable(override):
            _unavailable(
                f"CHROMIUM_PATH={override} is not an executable file; unset it to use Debian's chromium "
                f"({DEBIAN_CHROMIUM}, installed by apt-get install chromium)"
            )
        return override

    if _executable(DEBIAN_CHROMIUM):
        return DEBIAN_CHROMIUM
    can_install = hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get")
    if not can_install:
        _unavailable(
            f"{DEBIAN_CHROMIUM} is missing and cannot be installed here (needs root and apt-get); {INSTALL_HINT}"
        )
    failure = _apt_install_chromium(request.config)
    if failure or not _executable(DEBIAN_CHROMIUM):
        why = failure or f"apt-get succeeded but {DEBIAN_CHROMIUM} is still missing"
        _unavailable(f"could not install Debian's chromium: {why}; {INSTALL_HINT}")
    return DEBIAN_CHROMIUM


@pytest.fixture(scope="package")
def browser(chromium_executable):
    """One headless chromium for the browser tests, closed after the last of them.

    Package scope, not session: while Playwright's sync API runs, an asyncio loop is running in the main thread,
    which would change how every later test (of other packages) sees Django's ORM, asyncio.run and async_to_sync.
    """
    from playwright.sync_api import expect, sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    expect.set_options(timeout=TIMEOUT_MS)
    try:
        with sync_playwright() as playwright:
            launched = playwright.chromium.launch(
                executable_path=chromium_executable, headless=True, args=CHROMIUM_ARGS
            )
            try:
                yield launched
            finally:
                launched.close()
    finally:
        expect.set_options(timeout=5_000)  # Playwright's default
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser):
    """A fresh page (its own context: no cookies from other tests) 1400x900, waiting at most 15 s by default."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        new_page = context.new_page()
        new_page.set_default_timeout(TIMEOUT_MS)
        yield new_page
    finally:
        context.close()


@pytest.fixture(scope="session")
def screenshot_dir():
    """Where tests save screenshots: $SCREENSHOT_DIR, else var/screenshots in the checkout (git-ignored)."""
    directory = Path(os.environ.get("SCREENSHOT_DIR", REPO / "var" / "screenshots"))
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def login(page, live_server_url, username, password):
    """Log into the Django admin through its login form and check the browser landed on an admin page."""
    base = str(live_server_url).rstrip("/")
    page.goto(f"{base}/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.click("#login-form [type=submit]")
    path = urlsplit(page.url).path
    errors = page.locator(".errornote, .errorlist").all_inner_texts()
    assert path.startswith("/admin/") and not path.startswith("/admin/login/"), (
        f"admin login as {username!r} did not succeed: at {page.url}, errors: {errors}"
    )
    assert page.locator("#user-tools").count() == 1, f"no #user-tools on {page.url}: not logged in?"
    return page


@pytest.fixture
def admin_login(page, live_server):
    """A function logging `page` into the admin of `live_server`: admin_login(username, password) -> page."""

    def log_in(username, password):
        return login(page, live_server.url, username, password)

    return log_in
