"""Settings for bench/soak.py: the project's settings on the soak's own queue (Redis db and
PostgreSQL database come from the environment soak.py sets)."""

from dashboard.settings import *  # noqa: F403

CELERY_TASK_DEFAULT_QUEUE = "soak-celery"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
