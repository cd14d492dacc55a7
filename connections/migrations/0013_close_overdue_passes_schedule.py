"""The beat schedule that closes refresh passes past their deadline, every minute."""

from django.db import migrations
from django.utils import timezone

TASK_NAME = "Close overdue refresh passes"
EVERY_MINUTES = 1


def create_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    interval = IntervalSchedule.objects.filter(every=EVERY_MINUTES, period="minutes").first()
    if interval is None:
        interval = IntervalSchedule.objects.create(every=EVERY_MINUTES, period="minutes")
    PeriodicTask.objects.get_or_create(
        name=TASK_NAME,
        defaults={
            "task": "connections.tasks.passes_close_overdue",
            "interval": interval,
            "enabled": True,
            "description": "Closes refresh passes past their deadline as not completed, so "
            "/healthz turns red when workers die (connections.tasks.passes_close_overdue).",
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
        ("connections", "0012_refresh_passes"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, delete_schedule)]
