"""Builders of the portal's tests: people who log in with a password, and a browser that
logs in to the admin through its form, as a person does."""

from __future__ import annotations

from playwright.sync_api import Page, expect

# The password of every test user who logs in with one (olga, the browser tests' admins).
PASSWORD = "the-right-password-42"
# Playwright's default is 30 s; a page of this admin that takes 10 s is broken anyway.
TIMEOUT_MS = 10_000


def log_in_with_the_form(page: Page, base_url: str, username: str, password: str = PASSWORD):
    """Log `page` in to the admin at `base_url` through the login form; the admin's index
    must be what it lands on."""
    page.goto(f"{base_url}/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_have_text("Calendar Connections Portal")
