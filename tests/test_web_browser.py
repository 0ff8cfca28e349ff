"""The web page in a real browser: Debian's chromium, driven by Playwright.

Against the session's real stack (gateway, link, user and analytics
services, Postgres, Redis, the broker): a user signs up, shortens a link,
follows it, logs in again, sees the click counted on the stats page, and hits
a rate limit. Never a downloaded browser: ``executable_path`` is the system's
chromium (infra/bootstrap.sh installs it).

Screenshots of the main screens go to ``WEB_SCREENSHOTS_DIR`` (default
``.devstack/screenshots``, kept by CI as artifacts); ``make screenshots``
points it at ``docs/screenshots`` to refresh the ones the README shows.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from infra.devstack.stack import REPO_ROOT
from tests.conftest import Infra, running_gateway

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(os.environ.get("WEB_SCREENSHOTS_DIR", REPO_ROOT / ".devstack" / "screenshots"))
# A desktop browser's user agent: headless chromium names itself
# "HeadlessChrome", which analytics rightly counts as a bot.
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
PASSWORD = "a long and unusual passphrase"
TARGET = "https://example.com/landing"
# The last of Redis's 16 databases: tests/test_ratelimit.py counts up from 2.
RATELIMIT_DB = 15


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: run infra/bootstrap.sh (make install)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            yield launched
        finally:
            launched.close()


def open_page(browser: Browser, base_url: str, *, width: int = 1100) -> Page:
    context = browser.new_context(
        base_url=base_url, user_agent=USER_AGENT, viewport={"width": width, "height": 800}
    )
    context.set_default_timeout(10_000)

    # The short link's target is on the internet, which tests do not reach:
    # the browser's request for it is answered here, after the real redirect.
    def landing(route: Route) -> None:
        route.fulfill(status=200, content_type="text/html", body="<h1>landed</h1>")

    context.route(re.compile(r"https://example\.com/.*"), landing)
    return context.new_page()


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_up(page: Page, email: str) -> None:
    page.goto("/#account")
    page.get_by_label("Email", exact=True).nth(1).fill(email)
    page.get_by_label("Password (at least 10 characters)").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("status")).to_have_text("Welcome! Your account is ready.")


def log_in(page: Page, email: str, password: str = PASSWORD) -> None:
    page.goto("/#account")
    form = page.locator("#login-form")
    form.get_by_label("Email").fill(email)
    form.get_by_label("Password").fill(password)
    form.get_by_role("button", name="Log in").click()


def test_shorten_follow_log_in_and_see_the_click_on_the_stats_page(
    browser: Browser, gateway_url: str, analytics_url: str
) -> None:
    page = open_page(browser, gateway_url)
    email = f"web-{uuid.uuid4().hex[:8]}@example.com"
    sign_up(page, email)

    page.get_by_role("link", name="Shorten", exact=True).click()
    page.get_by_label("Long URL").fill(TARGET)
    page.get_by_role("button", name="Shorten", exact=True).click()
    short = page.locator("#result-link")
    expect(short).to_have_text(re.compile(rf"^{re.escape(gateway_url)}/[0-9A-Za-z]{{7}}$"))
    code = short.inner_text().rsplit("/", 1)[1]
    qr = page.get_by_role("img", name=re.compile("QR code for"))
    expect(qr).to_be_visible()
    expect(qr).not_to_have_js_property("naturalWidth", 0)  # the image loaded and decoded
    shot(page, "shorten")

    short.click()  # the real redirect, through the gateway and the link service
    expect(page.locator("h1")).to_have_text("landed")
    assert page.url == TARGET

    page.goto("/")
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("status")).to_have_text("You are logged out.")
    log_in(page, email)
    expect(page.get_by_role("heading", name="My links")).to_be_visible()
    row = page.locator("#links-body tr", has_text=code)
    expect(row).to_be_visible()

    # The click travels link service -> broker -> analytics: reload until it lands.
    clicks = page.locator("#stats-totals dd").first
    loaded = page.locator("#stats-totals dd, #notice:not([hidden])").first
    deadline = time.monotonic() + 30
    while True:
        row.get_by_role("button", name=f"Stats of {code}").click()
        expect(loaded).to_be_visible()
        if (clicks.is_visible() and clicks.inner_text() == "1") or time.monotonic() > deadline:
            break
        page.wait_for_timeout(500)
        page.get_by_role("link", name="Back to my links").click()
    expect(clicks).to_have_text("1")
    expect(page.locator("#stats-devices")).to_contain_text("desktop")
    expect(page.locator("#stats-chart svg rect.bar")).to_have_count(30)
    shot(page, "stats")
    page.get_by_role("link", name="Back to my links").click()
    expect(row.locator('td[data-label="Clicks"]')).to_have_text("1")
    shot(page, "links")


def test_a_rate_limited_login_says_how_long_to_wait(
    browser: Browser, infra: Infra, link_url: str, user_url: str
) -> None:
    # Counters of its own (the other gateways' logins share the address 127.0.0.1).
    redis_url = f"redis://127.0.0.1:{infra.ports.redis}/{RATELIMIT_DB}"
    with redis.Redis.from_url(redis_url) as connection:
        connection.flushdb()
    with running_gateway(
        infra, link_url, user_service_url=user_url, redis_url=redis_url, ratelimit_auth="3/minute"
    ) as strict:
        page = open_page(browser, strict)
        for _ in range(3):
            log_in(page, "nobody@example.com", "wrong password 123")
            expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
        log_in(page, "nobody@example.com", "wrong password 123")
        expect(page.get_by_role("alert")).to_have_text(
            re.compile(r"^Too many requests\. Please wait \d+ s before trying again\.$")
        )
        shot(page, "rate-limited")


def test_links_are_edited_and_deleted_with_the_keyboard_on_a_phone_screen(
    browser: Browser, gateway_url: str
) -> None:
    page = open_page(browser, gateway_url, width=390)
    sign_up(page, f"phone-{uuid.uuid4().hex[:8]}@example.com")
    page.goto("/#shorten")
    page.reload()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Long URL")).to_be_focused()
    page.keyboard.type("https://example.com/by-keyboard")
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Copy")).to_be_focused()

    page.goto("/#links")
    code = page.locator("#links-body tr a").first.inner_text()
    page.get_by_role("button", name=f"Edit {code}").focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_label("Target URL")).to_be_focused()
    dialog.get_by_label("Maximum visits (empty: no limit)").fill("5")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text(f"Saved {code}.")
    row = page.locator("#links-body tr", has_text=code)
    expect(row.locator('td[data-label="Visits left"]')).to_have_text("5")
    # One card per link, nothing wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "links-phone")

    page.once("dialog", lambda confirm: confirm.accept())
    page.get_by_role("button", name=f"Delete {code}").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text(f"Deleted {code}.")
    expect(page.get_by_text("No links yet.")).to_be_visible()


def test_api_errors_are_explained_in_words(browser: Browser, gateway_url: str) -> None:
    page = open_page(browser, gateway_url)
    page.goto("/#shorten")
    alert = page.get_by_role("alert")
    page.get_by_label("Long URL").fill("javascript:alert(1)")
    page.get_by_role("button", name="Shorten", exact=True).click()
    # invalid_link: the server's own detail says what to change.
    expect(alert).to_contain_text("http")
    alias = f"taken-{uuid.uuid4().hex[:8]}"
    page.get_by_text("More options").click()
    page.get_by_label("Alias (optional)").fill(alias)
    for _ in range(2):
        page.get_by_label("Long URL").fill(TARGET)
        page.get_by_role("button", name="Shorten", exact=True).click()
    expect(alert).to_have_text("That alias is already taken. Choose another one.")
    page.get_by_label("Alias (optional)").fill("")
    page.get_by_label("Maximum visits (optional)").fill("0")
    page.get_by_role("button", name="Shorten", exact=True).click()
    expect(alert).to_have_text(re.compile(r"^Please check: max_visits: .+\.$"))


def test_a_session_that_cannot_be_renewed_ends_with_a_message(
    browser: Browser, gateway_url: str
) -> None:
    page = open_page(browser, gateway_url)
    page.goto("/")
    # What an expired, revoked session leaves in the tab: tokens the API refuses.
    stale = '{"email": "gone@example.com", "access": "not-a-jwt", "refresh": "revoked"}'
    page.evaluate("s => sessionStorage.setItem('shortener.session', s)", stale)
    page.goto("/#links")
    expect(page.get_by_role("alert")).to_have_text(re.compile(r"Please log in again\.$"))
    expect(page.get_by_role("heading", name="Log in or sign up")).to_be_visible()
    expect(page.get_by_role("button", name="Log out")).to_be_hidden()
