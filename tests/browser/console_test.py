"""The admin console (/admin/) in a real headless Chromium, driven by Playwright.

Signs in as an admin with a TOTP code, finds an account by search, sees its picture, edits it
and sees the edit in the audit log, reverts it (and sees the second revert refused with its
conflict), revokes a session, disables and enables the account, removes the picture, edits the
bio and a metadata key, checks that a non-admin is turned away and that markup in a name or in
metadata is shown as text, that a reload keeps the session and refreshes its tokens, and that
signing out revokes it. Any alert, uncaught error or Content-Security-Policy violation fails
the run. A screenshot of each page goes to the output folder. Run by `.ci/run` against the
release binary:

    python console_test.py BASE_URL MAIL_DIR --authgate BINARY --database-url URL \
        [--screenshots DIR] [--chromium PATH]

BASE_URL is a running authgate with `AUTHGATE_MAIL=file://MAIL_DIR` and the limits off;
BINARY and URL create the first admin with `authgate users create` on its database. Needs
Playwright for Python and Debian's chromium (no `playwright install`).
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import pathlib
import re
import secrets
import struct
import subprocess
import time
import urllib.error
import urllib.request
import zlib

from playwright.sync_api import expect, sync_playwright

PASSWORD = "a long console password"
MARKUP = "<script>alert(1)</script>"
OTHER_MARKUP = "<img src=x onerror=alert(2)>"


def arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base_url")
    parser.add_argument("mail_dir", type=pathlib.Path)
    parser.add_argument("--authgate", required=True, help="the authgate binary")
    parser.add_argument("--database-url", required=True, help="the running service's database")
    parser.add_argument(
        "--screenshots", type=pathlib.Path, default=pathlib.Path("target/browser-screenshots")
    )
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    return parser.parse_args()


ARGS = arguments()
BASE = ARGS.base_url.rstrip("/")
# Each run has its own accounts, so the suite runs again on the same database.
RUN = secrets.token_hex(3)


def api(method, path, body=None, token=None):
    """(status, JSON answer) of one request to the API."""
    request = urllib.request.Request(f"{BASE}{path}", method=method)
    if body is not None:
        request.add_header("Content-Type", "application/json")
        request.data = json.dumps(body).encode()
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, text = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read()
    return status, (json.loads(text) if text else None)


def ok(expected, answer):
    status, body = answer
    assert status == expected, f"{status}: {body}"
    return body


def latest_code(email):
    """The code of the newest mail to `email` in the mail folder (waits for the outbox)."""
    for _ in range(100):
        mails = sorted(ARGS.mail_dir.glob("*"), key=lambda path: path.stat().st_mtime)
        for mail in reversed(mails):
            text = mail.read_text(errors="replace")
            code = re.search(r"^(\d{6})\s*$", text, re.MULTILINE)
            if email in text and code:
                return code.group(1)
        time.sleep(0.1)
    raise AssertionError(f"no code was mailed to {email}")


def totp(secret, step):
    """RFC 6238: HMAC-SHA-1 of the 30-second step, truncated to 6 digits."""
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    number = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{number % 1_000_000:06d}"


def png(width, height, rgb):
    """A one-colour PNG, made with the standard library."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def upload_picture(token):
    request = urllib.request.Request(
        f"{BASE}/auth/me/avatar", data=png(64, 64, (36, 81, 179)), method="PUT"
    )
    request.add_header("Content-Type", "image/png")
    request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200, response.status


def registered(email, first_name, last_name):
    """A verified account made through the API; the verify-otp answer."""
    body = {"email": email, "password": PASSWORD, "password2": PASSWORD}
    ok(201, api("POST", "/auth/register", {**body, "first_name": first_name, "last_name": last_name}))
    return ok(200, api("POST", "/auth/verify-otp", {"email": email, "otp": latest_code(email)}))


def admin_with_totp(email):
    """The first admin, made with the command line, with an authenticator app enrolled through
    the API. Returns the TOTP secret and the step its enrolment used (refused from then on)."""
    created = subprocess.run(
        [ARGS.authgate, "users", "create", "--email", email, "--role", "admin"],
        input=PASSWORD,
        text=True,
        capture_output=True,
        env={**os.environ, "DATABASE_URL": ARGS.database_url},
        check=False,
    )
    assert created.returncode == 0, created.stderr
    token = ok(200, api("POST", "/auth/login", {"login": email, "password": PASSWORD}))["access"]
    secret = ok(200, api("POST", "/auth/mfa/totp/setup", {"password": PASSWORD}, token))["secret"]
    step = int(time.time()) // 30
    ok(200, api("POST", "/auth/mfa/totp/enable", {"code": totp(secret, step)}, token))
    return secret, step


def next_code(secret, used_step):
    """A code not used yet: this step's, or the next one's (one step either side is accepted)."""
    return totp(secret, max(int(time.time()) // 30, used_step + 1))


class Browser:
    """One page, with every alert, uncaught error and policy violation recorded."""

    def __init__(self, playwright):
        self.browser = playwright.chromium.launch(
            executable_path=ARGS.chromium, args=["--no-sandbox"]
        )
        self.page = self.browser.new_page(viewport={"width": 1280, "height": 900})
        self.alerts, self.problems = [], []
        self.page.on("dialog", self._alert)
        self.page.on("pageerror", lambda error: self.problems.append(f"uncaught: {error}"))
        self.page.on("console", self._console)
        ARGS.screenshots.mkdir(parents=True, exist_ok=True)

    def _alert(self, dialog):
        self.alerts.append(dialog.message)
        dialog.dismiss()

    def _console(self, message):
        # Refused API calls log "Failed to load resource" on their own: those are expected.
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.problems.append(message.text)

    def screenshot(self, name):
        self.page.screenshot(path=str(ARGS.screenshots / f"{name}.png"), full_page=True)

    def confirm(self, button, naming):
        """Answers the console's confirmation, which must name the account."""
        dialog = self.page.locator("dialog[open]")
        expect(dialog).to_contain_text(naming)
        dialog.get_by_role("button", name=button).click()
        expect(dialog).to_have_count(0)


def sign_in(page, login, password):
    page.goto(f"{BASE}/admin/")
    page.get_by_label("Email or username").fill(login)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def main():
    admin = f"console-admin-{RUN}@example.com"
    target = f"console-target-{RUN}@example.com"
    hostile = f"console-markup-{RUN}@example.com"
    secret, used_step = admin_with_totp(admin)
    target_signed_in = registered(target, "Jane", "Target")
    target_id = target_signed_in["user"]["id"]
    upload_picture(target_signed_in["access"])
    # Two more sessions to see and revoke.
    for _ in range(2):
        ok(200, api("POST", "/auth/login", {"login": target, "password": PASSWORD}))
    hostile_token = registered(hostile, MARKUP, OTHER_MARKUP)["access"]
    ok(200, api("PATCH", "/auth/me", {"metadata": {"note": MARKUP}}, hostile_token))

    with sync_playwright() as playwright:
        browser = Browser(playwright)
        page = browser.page

        # A non-admin is turned away, and holds no session afterwards.
        page.goto(f"{BASE}/admin/")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        browser.screenshot("sign-in")
        sign_in(page, target, PASSWORD)
        expect(page.get_by_role("alert")).to_contain_text(f"{target} is not an administrator")
        browser.screenshot("sign-in-refused")
        assert page.evaluate("sessionStorage.length") == 0
        expect(page.get_by_role("navigation")).to_be_hidden()

        # The admin signs in with the password, then a TOTP code: with the keyboard alone.
        page.goto(f"{BASE}/admin/")
        page.keyboard.type(admin)
        page.keyboard.press("Tab")
        page.keyboard.type(PASSWORD)
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Second factor")).to_be_visible()
        page.get_by_label("Method").select_option("totp")
        page.get_by_label("Code").fill(next_code(secret, used_step))
        browser.screenshot("second-factor")
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
        expect(page.locator(".chart .bar")).to_have_count(30)
        browser.screenshot("dashboard")

        # Search as you type finds the account.
        page.get_by_role("navigation").get_by_role("link", name="Users").click()
        page.get_by_label("Search").fill(f"target-{RUN}")
        expect(page.locator(".total")).to_have_text("1 account")
        expect(page.locator("tbody tr")).to_have_count(1)
        browser.screenshot("users")
        page.get_by_role("link", name=target).click()
        expect(page.get_by_role("heading", name="Jane Target")).to_be_visible()
        # The picture is served by authgate and loads under the console's policy.
        avatar = page.get_by_role("img", name=f"Picture of {target}")
        expect(avatar).to_be_visible()
        page.wait_for_function("document.querySelector('img.avatar').naturalWidth > 0")
        browser.screenshot("user")

        # A session revoked.
        sessions = page.locator("table.sessions tbody tr")
        expect(sessions).to_have_count(3)
        sessions.first.get_by_role("button", name=re.compile("Revoke")).click()
        browser.confirm("Revoke", target)
        expect(page.get_by_role("status")).to_have_text("Session revoked.")
        expect(sessions).to_have_count(2)

        # An edit, shown before it is saved.
        page.get_by_label("First name").fill("Janet")
        page.get_by_role("button", name="Review changes").click()
        change = page.locator(".review table.diff tbody tr")
        expect(change).to_have_count(1)
        expect(change).to_contain_text("First name")
        expect(change.locator("del")).to_have_text("Jane")
        expect(change.locator("ins")).to_have_text("Janet")
        page.get_by_role("button", name="Save").click()
        expect(page.get_by_role("heading", name="Janet Target")).to_be_visible()

        # The edit in the audit log, reverted; reverting it again is refused by name.
        page.get_by_role("link", name=re.compile("Audit events of this account")).click()
        expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
        edit = page.locator("article.event").filter(has_text="account_updated").first
        expect(edit.locator("del")).to_have_text("Jane")
        expect(edit.locator("ins")).to_have_text("Janet")
        browser.screenshot("audit")
        edit.get_by_role("button", name="Revert").click()
        browser.confirm("Revert", "first_name")
        expect(page.get_by_role("status")).to_contain_text("Reverted")
        edit = page.locator("article.event").filter(has_text="Janet").last
        edit.get_by_role("button", name="Revert").click()
        browser.confirm("Revert", "first_name")
        expect(page.get_by_role("alert")).to_contain_text("first_name")
        page.goto(f"{BASE}/admin/#/users/{target_id}")
        expect(page.get_by_role("heading", name="Jane Target")).to_be_visible()

        # The API's refusal is shown as its message.
        page.get_by_label("Email", exact=True).fill(admin)
        page.get_by_role("button", name="Review changes").click()
        page.get_by_role("button", name="Save").click()
        expect(page.get_by_role("alert")).to_have_text("An account with this email already exists.")

        # Escape leaves a confirmation without doing anything.
        page.get_by_role("button", name="Disable").click()
        expect(page.locator("dialog[open]")).to_have_count(1)
        page.keyboard.press("Escape")
        expect(page.locator("dialog[open]")).to_have_count(0)
        expect(page.locator(".account-head .badge")).to_have_text("active")

        # Disabled, then enabled again.
        page.get_by_role("button", name="Disable").click()
        page.locator("dialog[open]").get_by_label(re.compile("Reason")).fill("browser test")
        browser.confirm("Disable", target)
        expect(page.get_by_role("status")).to_contain_text("Disabled")
        expect(page.locator(".account-head .badge")).to_have_text("disabled")
        page.get_by_role("button", name="Enable").click()
        browser.confirm("Enable", target)
        expect(page.locator(".account-head .badge")).to_have_text("active")

        # The picture removed.
        page.get_by_role("button", name="Remove picture").click()
        browser.confirm("Remove picture", target)
        expect(page.get_by_role("status")).to_have_text("Picture removed.")
        expect(page.locator("img.avatar")).to_have_count(0)

        # Profile and metadata edits: one line per metadata key, merged key by key.
        page.get_by_label("Bio").fill("Moved to the blue team")
        page.get_by_label("Metadata (JSON)", exact=True).fill('{"team": "blue"}')
        page.get_by_role("button", name="Review changes").click()
        expect(page.locator(".review table.diff tbody th")).to_have_text(["Bio", "Metadata: team"])
        page.get_by_role("button", name="Save").click()
        expect(page.get_by_role("status")).to_have_text("Saved: Bio, Metadata: team.")
        expect(page.locator("pre.json").first).to_contain_text('"team": "blue"')

        # Markup in a name or in metadata is text: shown, never run.
        page.get_by_role("navigation").get_by_role("link", name="Users").click()
        page.get_by_label("Search").fill(f"markup-{RUN}")
        expect(page.locator("tbody tr")).to_have_count(1)
        expect(page.locator("tbody tr")).to_contain_text(f"{MARKUP} {OTHER_MARKUP}")
        page.get_by_role("link", name=hostile).click()
        expect(page.locator("h1")).to_have_text(f"{MARKUP} {OTHER_MARKUP}")
        expect(page.locator("pre.json").first).to_contain_text(MARKUP)
        assert page.locator('img[src="x"], main script').count() == 0

        # Readable on a phone.
        page.set_viewport_size({"width": 390, "height": 844})
        browser.screenshot("user-phone")
        page.get_by_role("navigation").get_by_role("link", name="Users").click()
        page.get_by_label("Search").fill(f"target-{RUN}")
        expect(page.locator("tbody tr")).to_have_count(1)
        expect(page.locator("tbody tr")).to_contain_text(target)
        browser.screenshot("users-phone")
        page.get_by_role("navigation").get_by_role("link", name="Dashboard").click()
        expect(page.locator(".chart .bar")).to_have_count(30)
        browser.screenshot("dashboard-phone")
        page.set_viewport_size({"width": 1280, "height": 900})

        # The tokens outlive a reload, and are refreshed once the access token is due.
        stored = "JSON.parse(sessionStorage.getItem('authgate-console'))"
        first_refresh = page.evaluate(f"{stored}.refresh")
        page.evaluate(
            f"sessionStorage.setItem('authgate-console', JSON.stringify({{...{stored}, expiresAt: 0}}))"
        )
        page.reload()
        expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
        refresh = page.evaluate(f"{stored}.refresh")
        assert refresh != first_refresh, "the tokens were not refreshed"

        # Signing out ends the session at the server.
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        expect(page.get_by_role("status")).to_have_text("You are signed out.")
        status, _ = api("POST", "/auth/token/refresh", {"refresh": refresh})
        assert status == 401, status

        assert browser.alerts == [], f"a script ran: {browser.alerts}"
        assert browser.problems == [], f"the page logged errors: {browser.problems}"
        browser.browser.close()
    print(f"admin console: every check passed; screenshots in {ARGS.screenshots}")


if __name__ == "__main__":
    main()
