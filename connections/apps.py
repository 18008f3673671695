from django.apps import AppConfig


class ConnectionsConfig(AppConfig):
    name = "connections"
    verbose_name = "Connections"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings

        from . import crypto

        # Production refuses to start without usable credential keys; a malformed key
        # always stops start-up (ImproperlyConfigured names CREDENTIAL_KEYS).
        if settings.CREDENTIAL_KEYS or not settings.DEBUG:
            crypto.check_keys()
