"""Re-encrypt every stored secret with the newest key in CREDENTIAL_KEYS.

Batches of rows, each batch its own transaction: safe to interrupt and run again
(a row already on the newest key is skipped). `--check` only reports how many
secrets still depend on an older key (exit 1 if any), so operators know when an
old key can be dropped from CREDENTIAL_KEYS.
"""

from __future__ import annotations

import sys

from cryptography.fernet import InvalidToken
from django.core.management.base import BaseCommand
from django.db import transaction

from connections.crypto import Sealed, needs_rekey, rekey
from connections.models import Credential
from connections.services.audit import Actor, audit

BATCH = 200


class Command(BaseCommand):
    help = "Re-encrypt every secret with the newest key (--check: report what still needs an older key)."

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true", help="report only; exit 1 if any secret needs an older key")
        parser.add_argument("--batch-size", type=int, default=BATCH)

    def handle(self, *args, **options):
        stale, unreadable = self._scan()
        if options["check"]:
            return self._report(stale, unreadable)
        rotated = 0
        ids = [pk for pk, _ in stale]
        for start in range(0, len(ids), options["batch_size"]):
            with transaction.atomic():
                for cred in Credential.objects.select_for_update().filter(pk__in=ids[start:start + options["batch_size"]]):
                    token = cred.secret.token
                    if not needs_rekey(token):
                        continue  # done by a concurrent or earlier run
                    Credential.objects.filter(pk=cred.pk).update(secret=Sealed(rekey(token)))
                    rotated += 1
        audit(actor=Actor.cli(), action="keys.rotate",
              details={"re_encrypted": rotated, "unreadable": len(unreadable)})
        self.stdout.write(f"Re-encrypted {rotated} secret(s) with the newest key.")
        if unreadable:
            self._describe_unreadable(unreadable)
            sys.exit(1)

    def _scan(self):
        stale, unreadable = [], []
        rows = Credential.objects.select_related("connection").order_by("pk").iterator(chunk_size=500)
        for cred in rows:
            token = cred.secret.token
            if needs_rekey(token):
                try:
                    rekey(token)
                except InvalidToken:
                    unreadable.append(cred)
                    continue
                stale.append((cred.pk, cred))
        return stale, unreadable

    def _report(self, stale, unreadable):
        if not stale and not unreadable:
            self.stdout.write("All secrets are encrypted with the newest key; older keys can be removed.")
            return
        if stale:
            self.stdout.write(f"{len(stale)} secret(s) still depend on an older key: run `manage.py rotate_keys`.")
            for _, cred in stale:
                self.stdout.write(f"  {cred.connection.name} credential v{cred.version} ({cred.state})")
        if unreadable:
            self._describe_unreadable(unreadable)
        sys.exit(1)

    def _describe_unreadable(self, unreadable):
        self.stderr.write(
            f"{len(unreadable)} secret(s) cannot be decrypted with any key in CREDENTIAL_KEYS "
            "(the key that encrypted them was removed): put it back, run rotate_keys, then remove it."
        )
        for cred in unreadable:
            self.stderr.write(f"  {cred.connection.name} credential v{cred.version} ({cred.state})")

