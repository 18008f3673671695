import json
import sys

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create or update users and applications from JSON (a file argument or standard input)."

    def add_arguments(self, parser):
        parser.add_argument("file", nargs="?")

    def handle(self, *args, file=None, **options):
        from tests.authserver.seed import seed

        data = json.load(open(file) if file else sys.stdin)
        self.stdout.write(json.dumps(seed(data)))
