from django.apps import AppConfig


class ConnectionsConfig(AppConfig):
    name = "connections"
    verbose_name = "Connections"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings
        from django.db.models.signals import post_migrate

        from dashboard import reauth  # noqa: F401 (its sign-in receiver stamps the session)

        from . import crypto, tasks  # noqa: F401 (tasks: registered, so lower layers can queue them by name)
        from .outbound.sessions import register_renewer
        from .rotation.grants import renew_for_call

        register_renewer(renew_for_call)
        post_migrate.connect(_sync_roles, sender=self)
        post_migrate.connect(_create_cache_table, sender=self)

        # Production refuses to start without usable credential keys; a malformed key
        # always stops start-up (ImproperlyConfigured names CREDENTIAL_KEYS).
        if settings.CREDENTIAL_KEYS or not settings.DEBUG:
            crypto.check_keys()


def _sync_roles(sender, **kwargs) -> None:
    """Keep the role groups and the default alert rules in place after every migrate (and after a
    test database flush, which empties what the data migrations created)."""
    from django.apps import apps

    from .alerts import ensure_default_rules
    from .roles import ROLES, sync_roles

    sync_roles(apps, ROLES)
    ensure_default_rules()


def _create_cache_table(sender, using="default", **kwargs) -> None:
    """The embedded default's cache is a database table (settings.py): every migrate creates it if it
    is missing (Django's createcachetable; nothing to do for Redis). A hook rather than a migration,
    so a deployment that switches CACHE_URL to the database later gets its table on the next migrate."""
    from django.core.management import call_command

    call_command("createcachetable", database=using, verbosity=0)
