from django.db import migrations, models
from django.db.models.functions import Lower


def lower_case_guids(apps, schema_editor):
    """Site and instance GUIDs that differ only in case are one site: store them lower-case."""
    Tenant = apps.get_model("tenants", "Tenant")
    Tenant.objects.update(site_id=Lower("site_id"), instance_id=Lower("instance_id"))


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0002_memberships_and_audit"),
    ]

    operations = [
        migrations.RunPython(lower_case_guids, migrations.RunPython.noop, elidable=True),
        migrations.AlterModelOptions(
            name="tenant",
            options={
                "ordering": ["name"],
                "permissions": [
                    (
                        "change_way_in",
                        "Can change how a tenant reaches Wix "
                        "(site, Wix app, app instance, API key)",
                    )
                ],
            },
        ),
        migrations.AddConstraint(
            model_name="tenant",
            constraint=models.UniqueConstraint(
                condition=models.Q(("instance_id", ""), _negated=True),
                fields=("instance_id",),
                name="tenants_tenant_instance_unique",
                violation_error_message="Another tenant already uses this app instance.",
            ),
        ),
    ]
