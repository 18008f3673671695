"""Re-encrypt every stored secret with the newest key in CREDENTIAL_KEYS: credentials and the
sealed seeds of second factors (SecondFactorSeal).

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
from connections.models import Credential, SecondFactorSeal
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
        rotated = self._rotate([cred.pk for cred in stale if isinstance(cred, Credential)], options["batch_size"])
        rotated += self._rotate_seals([seal.pk for seal in stale if isinstance(seal, SecondFactorSeal)],
                                      options["batch_size"])
        audit(actor=Actor.cli(), action="keys.rotate",
              details={"re_encrypted": rotated, "unreadable": len(unreadable)})
        self.stdout.write(f"Re-encrypted {rotated} secret(s) with the newest key.")
        if unreadable:
            self._describe_unreadable(unreadable)
            sys.exit(1)

    def _rotate(self, ids, batch) -> int:
        rotated = 0
        for start in range(0, len(ids), batch):
            with transaction.atomic():
                for cred in Credential.objects.select_for_update().filter(pk__in=ids[start:start + batch]):
                    token = cred.secret.token
                    if not needs_rekey(token):
                        continue  # done by a concurrent or earlier run
                    Credential.objects.filter(pk=cred.pk).update(secret=Sealed(rekey(token)))
                    rotated += 1
        return rotated

    def _rotate_seals(self, ids, batch) -> int:
        rotated = 0
        for start in range(0, len(ids), batch):
            with transaction.atomic():
                for seal in SecondFactorSeal.objects.select_for_update().filter(pk__in=ids[start:start + batch]):
                    if needs_rekey(seal.sealed):
                        SecondFactorSeal.objects.filter(pk=seal.pk).update(sealed=rekey(seal.sealed))
                        rotated += 1
        return rotated

    def _scan(self):
        """(rows that need the newest key, rows no key can read): credentials and second-factor seals."""
        stale, unreadable = [], []
        creds = Credential.objects.select_related("connection").order_by("pk").iterator(chunk_size=500)
        seals = SecondFactorSeal.objects.select_related("device__user").order_by("pk").iterator(chunk_size=500)
        for row, token in [(c, c.secret.token) for c in creds] + [(s, s.sealed) for s in seals]:
            if needs_rekey(token):
                try:
                    rekey(token)
                except InvalidToken:
                    unreadable.append(row)
                    continue
                stale.append(row)
        return stale, unreadable

    @staticmethod
    def _describe(row) -> str:
        if isinstance(row, SecondFactorSeal):
            return f"second factor (TOTP app) of user {row.device.user.get_username()}"
        return f"{row.connection.name} credential v{row.version} ({row.state})"

    def _report(self, stale, unreadable):
        if not stale and not unreadable:
            self.stdout.write("All secrets are encrypted with the newest key; older keys can be removed.")
            return
        if stale:
            self.stdout.write(f"{len(stale)} secret(s) still depend on an older key: run `manage.py rotate_keys`.")
            for row in stale:
                self.stdout.write(f"  {self._describe(row)}")
        if unreadable:
            self._describe_unreadable(unreadable)
        sys.exit(1)

    def _describe_unreadable(self, unreadable):
        self.stderr.write(
            f"{len(unreadable)} secret(s) cannot be decrypted with any key in CREDENTIAL_KEYS "
            "(the key that encrypted them was removed): put it back, run rotate_keys, then remove it."
        )
        for row in unreadable:
            self.stderr.write(f"  {self._describe(row)}")

