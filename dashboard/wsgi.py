import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
application = get_wsgi_application()


def _persistent_connections() -> None:
    """Web threads keep their database connection between requests (WEB_CONN_MAX_AGE seconds),
    checked before each request is served: opening a PostgreSQL connection per request cost more
    than the proxy's whole work (docs/proxy.md, "Serving"). Celery workers and the CLI keep
    CONN_MAX_AGE=0 (docs/reliability.md)."""
    from django.conf import settings

    for database in settings.DATABASES.values():
        database["CONN_MAX_AGE"] = settings.WEB_CONN_MAX_AGE
        database["CONN_HEALTH_CHECKS"] = True


_persistent_connections()
