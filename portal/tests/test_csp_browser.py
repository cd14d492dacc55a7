"""The Content-Security-Policy: on every response, and the admin, the enrolment page, the
connect form and Swagger UI all work under it in a real browser (chromium)."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from playwright.sync_api import Page, expect

from portal.tests.builders import PASSWORD, TIMEOUT_MS, log_in_with_the_form
from tenants.tests.builders import superuser

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
USERNAME = "csp-admin"
# Collects the page's CSP violations; added before any of the page's own scripts run.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(
    `${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


def script_sources() -> list[str]:
    directives = settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]
    return [str(source) for source in directives["script-src"]]


def sha256_source(text: str) -> str:
    return f"'sha256-{base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()}'"


@pytest.mark.django_db
def test_responses_carry_the_policy(client):
    response = client.get("/admin/login/")

    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "object-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy
    script_src = re.search(r"script-src ([^;]*)", policy).group(1)
    assert "'unsafe-inline'" not in script_src
    assert "'unsafe-eval'" not in script_src


@pytest.mark.django_db
def test_swagger_ui_comes_from_the_portal_with_its_script_nonced():
    response = Client().get("/api/docs/")

    html = response.content.decode()
    nonce = re.search(r"'nonce-([^']+)'", response["Content-Security-Policy"]).group(1)
    assert f'<script nonce="{nonce}">' in html
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn.jsdelivr.net" not in html


def test_every_inline_script_of_the_templates_is_allowed():
    """An inline script needs nonce="{{ request.csp_nonce }}" (or its hash in script-src);
    an inline event handler attribute is refused unless its hash is allowed."""
    allowed = script_sources()
    refused = []
    for template in sorted(TEMPLATES.rglob("*.html")):
        text = template.read_text()
        for match in re.finditer(r"<script(?P<attrs>[^>]*)>(?P<body>.*?)</script>", text, re.S):
            attrs = match["attrs"]
            if "src=" in attrs or "nonce=" in attrs or "application/json" in attrs:
                continue
            if sha256_source(match["body"]) not in allowed:
                refused.append(f"{template.relative_to(TEMPLATES)}: inline <script>")
        for match in re.finditer(r'\son[a-z]+="([^"]*)"', text):
            if sha256_source(match[1]) not in allowed:
                refused.append(f"{template.relative_to(TEMPLATES)}: {match[0].strip()}")

    assert refused == [], "blocked by the Content-Security-Policy; add a nonce or a hash"


# --- In chromium -------------------------------------------------------------------------


@pytest.fixture
def csp_page(page: Page, live_server, demo) -> Page:
    """A superuser logged in through the login form, violations and console errors recorded."""
    superuser(USERNAME, password=PASSWORD)
    page.set_default_timeout(TIMEOUT_MS)
    page.add_init_script(RECORD_VIOLATIONS)
    page.console_errors = []
    page.on(
        "console",
        lambda message: (
            page.console_errors.append(message.text) if message.type == "error" else None
        ),
    )
    log_in_with_the_form(page, live_server.url, USERNAME)
    return page


def assert_no_violations(page: Page) -> None:
    assert page.evaluate("window.__cspViolations") == []
    assert [e for e in page.console_errors if "Content Security Policy" in e] == []


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.filterwarnings("ignore:No directory at:UserWarning")
@pytest.mark.filterwarnings("ignore:Session-scoped fixtures defined as instance methods")
def test_admin_enrolment_connect_form_and_swagger_work_under_the_policy(
    csp_page, live_server, demo
):
    page = csp_page
    url = live_server.url

    page.goto(f"{url}/admin/")
    expect(page.locator("#portal-totals")).to_be_visible()
    assert_no_violations(page)

    page.get_by_role("link", name="Two-factor authentication").click()
    expect(page.locator("#two-factor-qr svg")).to_be_visible()
    expect(page.locator("#two-factor-secret")).not_to_be_empty()
    assert_no_violations(page)

    # The connect form's inline script (allowed by its hash) hides what OAuth cannot do.
    aurora = demo["Salon Aurora"]
    page.goto(f"{url}/admin/tenants/tenant/{aurora.pk}/connect/")
    form = page.locator("#connect-form")
    form.locator("input[name=method][value=OAUTH]").check()
    offered = form.locator("select[name=provider] option:not([disabled])").all_inner_texts()
    assert offered and not any(text.startswith("Apple iCal") for text in offered)
    assert_no_violations(page)

    page.goto(f"{url}/admin/tenants/tenant/{aurora.pk}/change/")
    expect(page.locator("#content")).to_contain_text("Connect a calendar")
    assert_no_violations(page)

    page.goto(f"{url}/admin/connections/connection/")
    expect(page.locator("#result_list")).to_be_visible()
    assert_no_violations(page)

    page.goto(f"{url}/api/v1/tenants/")
    expect(page.locator(".response-info")).to_be_visible()  # the browsable API
    assert_no_violations(page)

    page.goto(f"{url}/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Calendar Connections")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    assert page.locator(".swagger-ui .opblock").count() > 10
    assert_no_violations(page)
