"""The beat schedule that sends due webhook retries, editable in the admin afterwards."""

from django.conf import settings
from django.db import migrations
from django.utils import timezone

TASK_NAME = "Send due webhook deliveries"


def create_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    every = settings.WEBHOOK_SWEEP_SECONDS
    interval = IntervalSchedule.objects.filter(every=every, period="seconds").first()
    if interval is None:
        interval = IntervalSchedule.objects.create(every=every, period="seconds")
    PeriodicTask.objects.get_or_create(
        name=TASK_NAME,
        defaults={
            "task": "alerts.tasks.send_due",
            "interval": interval,
            "enabled": True,
            "description": "Sends webhook deliveries whose attempt is due: retries, and first "
            "attempts a worker did not get to (alerts.tasks.send_due).",
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
        ("alerts", "0002_webhooks"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, delete_schedule)]
