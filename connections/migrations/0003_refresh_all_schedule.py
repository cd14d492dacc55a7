"""The beat schedule that refreshes every active tenant, editable in the admin afterwards."""

from django.conf import settings
from django.db import migrations
from django.utils import timezone

TASK_NAME = "Refresh all tenants"


def create_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    every = settings.REFRESH_INTERVAL_MINUTES
    interval = IntervalSchedule.objects.filter(every=every, period="minutes").first()
    if interval is None:
        interval = IntervalSchedule.objects.create(every=every, period="minutes")
    PeriodicTask.objects.get_or_create(
        name=TASK_NAME,
        defaults={
            "task": "connections.tasks.refresh_all",
            "interval": interval,
            "enabled": True,
            "description": "Queues one refresh per active tenant (connections.tasks.refresh_all).",
        },
    )
    # Historical models skip PeriodicTask.save(), which tells a running beat to reload.
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def delete_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    task = PeriodicTask.objects.filter(name=TASK_NAME).first()
    if task is None:
        return
    interval_id = task.interval_id
    task.delete()
    if interval_id and not PeriodicTask.objects.filter(interval_id=interval_id).exists():
        IntervalSchedule.objects.filter(pk=interval_id).delete()
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


class Migration(migrations.Migration):
    dependencies = [
        ("connections", "0002_connect_requests"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, delete_schedule)]
