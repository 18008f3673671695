"""Django's PostgreSQL backend with write-behind statements (base.py): settings.py uses it whenever
DATABASE_URL is PostgreSQL. Its vendor is "postgresql", its SQL, creation, introspection and
operations are Django's own."""
