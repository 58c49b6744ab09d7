"""Alembic environment: runs on the connection handed over by ledger.database.migrate.

Migrations are written by hand with ``op`` and import no models, so this room needs nothing
from the rooms whose tables it creates.
"""

from alembic import context
from sqlalchemy import create_engine

config = context.config
connection = config.attributes.get("connection")

if connection is None:  # run from the alembic CLI
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.begin() as conn:
        context.configure(connection=conn, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
