"""Re-encrypt every stored secret with the newest key in CREDENTIAL_KEYS: credentials, alert
channels' settings (a webhook URL is a secret) and the sealed seeds of second factors
(SecondFactorSeal).

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
from connections.models import AlertChannel, Credential, SecondFactorSeal
from connections.services.audit import Actor, audit

BATCH = 200
# Every model holding an encrypted column: the column, and what its descriptions read (select_related).
SEALED = {Credential: ("secret", ("connection",)), AlertChannel: ("config", ()),
          SecondFactorSeal: ("sealed", ("device__user",))}


def _token(row) -> str:
    """The row's ciphertext (an EncryptedJSONField holds a Sealed; a text column holds the token)."""
    value = getattr(row, SEALED[type(row)][0])
    return value.token if isinstance(value, Sealed) else value


class Command(BaseCommand):
    help = "Re-encrypt every secret with the newest key (--check: report what still needs an older key)."

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true", help="report only; exit 1 if any secret needs an older key")
        parser.add_argument("--batch-size", type=int, default=BATCH)

    def handle(self, *args, **options):
        stale, unreadable = self._scan()
        if options["check"]:
            return self._report(stale, unreadable)
        rotated = sum(self._rotate(model, [row.pk for row in stale if isinstance(row, model)], options["batch_size"])
                      for model in SEALED)
        audit(actor=Actor.cli(), action="keys.rotate",
              details={"re_encrypted": rotated, "unreadable": len(unreadable)})
        self.stdout.write(f"Re-encrypted {rotated} secret(s) with the newest key.")
        if unreadable:
            self._describe_unreadable(unreadable)
            sys.exit(1)

    @staticmethod
    def _rotate(model, ids, batch) -> int:
        rotated = 0
        field = SEALED[model][0]
        for start in range(0, len(ids), batch):
            with transaction.atomic():
                for row in model.objects.select_for_update().filter(pk__in=ids[start:start + batch]):
                    token = _token(row)
                    if not needs_rekey(token):
                        continue  # done by a concurrent or earlier run
                    new = rekey(token)
                    sealed = isinstance(getattr(row, field), Sealed)
                    model.objects.filter(pk=row.pk).update(**{field: Sealed(new) if sealed else new})
                    rotated += 1
        return rotated

    def _scan(self):
        """(rows that need the newest key, rows no key can read), of every model in SEALED."""
        stale, unreadable = [], []
        for model, (_, related) in SEALED.items():
            for row in model.objects.select_related(*related).order_by("pk").iterator(chunk_size=500):
                token = _token(row)
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
        if isinstance(row, AlertChannel):
            return f"alert channel {row.name} ({row.kind})"
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

