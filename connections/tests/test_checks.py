import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from connections.checks import check_wix_api_base_url


def test_warns_when_wix_is_not_wix_and_debug_is_off(settings):
    settings.DEBUG = False
    settings.WIX_API_BASE_URL = "http://127.0.0.1:8765"

    warnings = check_wix_api_base_url()

    assert [w.id for w in warnings] == ["connections.W001"]
    assert "http://127.0.0.1:8765" in warnings[0].msg


@pytest.mark.parametrize(
    ("debug", "url"),
    [
        (False, "https://www.wixapis.com"),
        (False, "https://www.wixapis.com/"),
        (True, "http://127.0.0.1:8765"),
    ],
)
def test_silent_for_wix_or_in_debug(settings, debug, url):
    settings.DEBUG = debug
    settings.WIX_API_BASE_URL = url

    assert check_wix_api_base_url() == []


def test_check_command_fails_on_the_warning_with_fail_level(settings):
    settings.DEBUG = False
    settings.WIX_API_BASE_URL = "http://evil.example"

    with pytest.raises(SystemCheckError, match=r"connections\.W001"):
        call_command("check", fail_level="WARNING")
