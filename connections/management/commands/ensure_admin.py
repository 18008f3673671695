"""Create the first admin account if none exists (make run).

The name and password come from SWITCHBOARD_ADMIN_USER / SWITCHBOARD_ADMIN_PASSWORD,
or the password is generated and printed once.
"""

import os
import secrets

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create an admin account if none exists; print its name and password once."

    def handle(self, *args, **options):
        if User.objects.filter(groups__name="admin").exists() or User.objects.filter(is_superuser=True).exists():
            self.stdout.write("An admin account exists already; nothing to do.")
            return
        username = os.environ.get("SWITCHBOARD_ADMIN_USER", "admin")
        password = os.environ.get("SWITCHBOARD_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        user = User.objects.create_user(username=username, password=password, is_staff=True, is_superuser=True)
        user.groups.add(Group.objects.get(name="admin"))
        if os.environ.get("SWITCHBOARD_ADMIN_PASSWORD"):
            self.stdout.write(self.style.SUCCESS(f"Created admin account {username!r} with the password from the environment."))
        else:
            self.stdout.write(self.style.SUCCESS(
                "\n  Created the first admin account (the password is shown once):\n"
                f"    user:     {username}\n    password: {password}\n"
                "  Change it after signing in: click your name at the top right (/accounts/password/).\n"
                "  Add the other people on the Users page (/users/) or with `manage.py users add`.\n"
            ))
