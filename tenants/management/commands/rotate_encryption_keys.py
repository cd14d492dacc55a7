"""Re-encrypt every EncryptedTextField value with the first key in PORTAL_ENCRYPTION_KEYS."""

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from tenants import crypto
from tenants.management.inputs import acting_user, add_acting_user
from tenants.models import Via
from tenants.services.encryption import BATCH_SIZE, RotationStopped, encryption_keys_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt every encrypted value with the first key in PORTAL_ENCRYPTION_KEYS "
        "(one transaction per model). Run it after putting a new key first; afterwards "
        "the old keys can be removed."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch-size", type=int, default=BATCH_SIZE, help="Rows read per query."
        )
        add_acting_user(parser)

    def handle(self, *args, batch_size, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        user = acting_user(options["user"])
        try:
            crypto.get_fernet()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None

        def report(label: str, count: int) -> None:
            self.stdout.write(f"{label}: {count} value(s) re-encrypted")

        try:
            total = encryption_keys_rotate(
                batch_size=batch_size, user=user, via=Via.COMMAND, on_model=report
            )
        except RotationStopped as exc:
            raise CommandError(
                f"{exc.error} Nothing was changed for {exc.label}; "
                "models listed above were already re-encrypted."
            ) from None
        self.stdout.write(f"Done: {total} value(s) re-encrypted with the first key.")
