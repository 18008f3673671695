"""Create the demo connections pointing at the local sandbox vendors (demo mode only): the five
built-ins, and the declarative examples (vendors/github.yaml, vendors/stripe.yaml) when
PROVIDERS_DIR holds them."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from connections.models import Connection
from connections.providers import PROVIDERS
from connections.sandbox import DEMO_CREDENTIALS
from connections.services.audit import Actor
from connections.services.vault import connection_create

DEMO = {
    "cleverbridge": "demo-cleverbridge",
    "clever": "demo-clever",
    "cloverdx": "demo-cloverdx",
    "teletracker": "demo-teletracker",
    "cleanlist": "demo-cleanlist",
    "github": "demo-github",  # declarative (vendors/github.yaml)
    "stripe": "demo-stripe",  # declarative (vendors/stripe.yaml)
}


class Command(BaseCommand):
    help = "Create the demo connections against the sandbox (runs only with DEMO_MODE on)."

    def handle(self, *args, **options):
        if not settings.DEMO_MODE:
            raise CommandError("DEMO_MODE is off: demo connections are for local evaluation only.")
        base = f"http://127.0.0.1:{settings.SANDBOX_PORT}"
        created = []
        skipped = []
        for provider, name in DEMO.items():
            if provider not in PROVIDERS:
                skipped.append(provider)  # a declarative example not in PROVIDERS_DIR
                continue
            if Connection.with_archived.filter(name=name).exists():
                continue
            connection_create(name=name, provider=provider, base_url=f"{base}/{provider}",
                              secret=dict(DEMO_CREDENTIALS[provider]), test_interval=300,
                              actor=Actor(label="demo", via="system"))
            created.append(name)
        self.stdout.write(f"Demo connections: {', '.join(created) if created else 'already present'} "
                          f"(sandbox vendors on {base})."
                          + (f" Not in PROVIDERS_DIR, so skipped: {', '.join(skipped)}." if skipped else ""))
