import io
import uuid

import pytest
from django.core.management import call_command, execute_from_command_line
from django.core.management.base import CommandError

from tenants.fields import reveal
from tenants.models import WixApp
from tenants.tests.factories import WixAppFactory, random_secret

pytestmark = pytest.mark.django_db


def add_wix_app(*args, stdin=None):
    out = io.StringIO()
    call_command("add_wix_app", *args, stdin=stdin, stdout=out)
    return out.getvalue()


def test_secret_from_stdin(encryption_key):
    secret = random_secret()
    app_id = str(uuid.uuid4())

    out = add_wix_app(
        "--name", "Agency", "--app-id", app_id, "--secret-stdin", stdin=io.StringIO(secret + "\n")
    )

    wix_app = WixApp.objects.get()
    assert out == f"{wix_app.pk}\n"
    assert (wix_app.name, wix_app.app_id, reveal(wix_app.app_secret)) == ("Agency", app_id, secret)


def test_secret_from_env(monkeypatch):
    secret = random_secret()
    monkeypatch.setenv("TEST_WIX_APP_SECRET", secret)

    out = add_wix_app(
        "--name", "Agency", "--app-id", str(uuid.uuid4()), "--secret-env", "TEST_WIX_APP_SECRET"
    )

    wix_app = WixApp.objects.get()
    assert out == f"{wix_app.pk}\n"
    assert reveal(wix_app.app_secret) == secret


def test_app_id_is_stored_lowercase():
    add_wix_app(
        "--name",
        "Agency",
        "--app-id",
        "0B0C0D0E-1A2B-4C3D-8E9F-001122334455",
        "--secret-stdin",
        stdin=io.StringIO(random_secret()),
    )

    assert WixApp.objects.get().app_id == "0b0c0d0e-1a2b-4c3d-8e9f-001122334455"


@pytest.mark.parametrize(
    ("args", "env", "stdin", "message"),
    [
        (
            ["--app-id", "not-a-guid", "--secret-stdin"],
            {},
            "s3cret-value",
            "app_id: Enter a GUID such as 0b0c0d0e-1a2b-4c3d-8e9f-001122334455.",
        ),
        (["--secret-stdin"], {}, "", "No app secret on stdin."),
        (["--secret-stdin"], {}, "  \n", "No app secret on stdin."),
        (
            ["--secret-env", "TEST_NO_SUCH_VARIABLE"],
            {},
            None,
            "Environment variable TEST_NO_SUCH_VARIABLE is not set.",
        ),
        (
            ["--secret-env", "TEST_EMPTY_SECRET"],
            {"TEST_EMPTY_SECRET": ""},
            None,
            "Environment variable TEST_EMPTY_SECRET is empty.",
        ),
        ([], {}, None, "Give the app secret with --secret-stdin or --secret-env VAR."),
        (
            ["--secret-stdin", "--secret-env", "TEST_WIX_APP_SECRET"],
            {"TEST_WIX_APP_SECRET": "s3cret-value"},
            "s3cret-value",
            "Give the app secret with --secret-stdin or --secret-env VAR, not both.",
        ),
    ],
    ids=["bad-guid", "empty-stdin", "blank-stdin", "missing-env", "empty-env", "neither", "both"],
)
def test_bad_input(monkeypatch, args, env, stdin, message):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TEST_NO_SUCH_VARIABLE", raising=False)
    if "--app-id" not in args:
        args = ["--app-id", str(uuid.uuid4()), *args]

    with pytest.raises(CommandError) as excinfo:
        add_wix_app("--name", "Agency", *args, stdin=io.StringIO(stdin or ""))

    assert str(excinfo.value) == message
    assert "s3cret-value" not in str(excinfo.value)
    assert WixApp.objects.count() == 0


def test_duplicate_app_id():
    existing = WixAppFactory()

    with pytest.raises(CommandError) as excinfo:
        add_wix_app(
            "--name",
            "Again",
            "--app-id",
            existing.app_id,
            "--secret-stdin",
            stdin=io.StringIO(random_secret()),
        )

    assert str(excinfo.value) == "app_id: Wix app with this App ID already exists."
    assert WixApp.objects.count() == 1


def test_command_line_failure_exits_1_with_one_line(monkeypatch, capsys):
    monkeypatch.delenv("TEST_NO_SUCH_VARIABLE", raising=False)
    argv = ["manage.py", "add_wix_app", "--skip-checks", "--name", "Agency"]
    argv += ["--app-id", str(uuid.uuid4()), "--secret-env", "TEST_NO_SUCH_VARIABLE"]

    with pytest.raises(SystemExit) as excinfo:
        execute_from_command_line(argv)

    assert excinfo.value.code == 1
    captured = capsys.readouterr()
    assert captured.err == "CommandError: Environment variable TEST_NO_SUCH_VARIABLE is not set.\n"
    assert captured.out == ""
