"""Storage: engine, sessions, the ORM schema and its Alembic migrations."""
