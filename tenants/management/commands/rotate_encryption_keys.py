"""Re-encrypt every EncryptedTextField value with the first key in PORTAL_ENCRYPTION_KEYS."""

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Case, Q, TextField, Value, When
from django.db.models.functions import Cast

from tenants import crypto
from tenants.fields import EncryptedTextField

BATCH_SIZE = 500


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

    def handle(self, *args, batch_size, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        try:
            crypto.get_fernet()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None
        total = 0
        for model, fields in encrypted_fields_by_model():
            try:
                with transaction.atomic(using=model._base_manager.db):
                    count = sum(
                        rotate_field(model, field, batch_size=batch_size) for field in fields
                    )
            except crypto.DecryptionError as exc:
                raise CommandError(
                    f"{exc} Nothing was changed for {model._meta.label}; "
                    "models listed above were already re-encrypted."
                ) from None
            total += count
            self.stdout.write(f"{model._meta.label}: {count} value(s) re-encrypted")
        self.stdout.write(f"Done: {total} value(s) re-encrypted with the first key.")


def encrypted_fields_by_model():
    """Return (model, [EncryptedTextField, ...]) for every concrete model that has one."""
    found = []
    for model in apps.get_models():
        meta = model._meta
        if meta.proxy or not meta.managed:
            continue
        fields = [f for f in meta.local_concrete_fields if isinstance(f, EncryptedTextField)]
        if fields:
            found.append((model, fields))
    return found


def rotate_field(model, field, *, batch_size):
    """Re-encrypt one field of every row, batch by batch; return how many values changed."""
    pk_name = model._meta.pk.name
    # Cast to plain text so the stored token is read as-is instead of being decrypted.
    rows = (
        model._base_manager.exclude(Q(**{field.name: ""}) | Q(**{f"{field.name}__isnull": True}))
        .annotate(stored_token=Cast(field.name, output_field=TextField()))
        .order_by(pk_name)
    )
    count = 0
    last_pk = None
    while True:
        batch_rows = rows if last_pk is None else rows.filter(**{f"{pk_name}__gt": last_pk})
        batch = list(batch_rows.values_list(pk_name, "stored_token")[:batch_size])
        if not batch:
            return count
        whens = []
        for pk, token in batch:
            label = f"{model._meta.label}.{field.name} (pk={pk})"
            new_token = crypto.rotate(token, label=label)
            whens.append(When(**{pk_name: pk}, then=Value(new_token, output_field=TextField())))
        # Plain-text values, so the field does not encrypt the new token a second time.
        model._base_manager.filter(**{f"{pk_name}__in": [pk for pk, _ in batch]}).update(
            **{field.name: Case(*whens, output_field=TextField())}
        )
        count += len(batch)
        last_pk = batch[-1][0]
