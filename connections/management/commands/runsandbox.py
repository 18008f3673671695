"""Serve the five vendor twins (connections/sandbox) in the foreground until Ctrl-C."""

from django.core.management.base import BaseCommand

from connections.sandbox import SandboxServer


class Command(BaseCommand):
    help = "Serve the local twins of the five vendors (the sandbox) until Ctrl-C."
    requires_system_checks = []  # the sandbox needs no database or settings beyond this command

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="Address to bind (default 127.0.0.1).")
        parser.add_argument("--port", type=int, default=8765, help="Port to bind (default 8765; 0 = any free port).")

    def handle(self, *args, host, port, **options):
        server = SandboxServer(host=host, port=port)
        self.stdout.write(f"Sandbox vendors on {server.url} (Ctrl-C to stop):")
        for name in server.vendor_names:
            self.stdout.write(f"  {name:<13} {server.base_url(name)}")
        self.stdout.write(f"  {'control':<13} {server.url}/_sandbox/")
        self.stdout.flush()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()
            self.stdout.write("Sandbox stopped.")
