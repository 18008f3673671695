from django.core.management.base import BaseCommand

from connections.scheduling import ensure_periodic_tasks


class Command(BaseCommand):
    help = "Create or update the Celery beat schedules (housekeeping and per-connection tests)."

    def handle(self, *args, **options):
        ensure_periodic_tasks()
        self.stdout.write("Beat schedules are up to date.")
