"""Alembic environment: the URL comes from the caller's config (``escalations
migrate``) or, for ``alembic`` run by hand, from ESCALATIONS_DATABASE_URL."""

import os

from alembic import context
from sqlalchemy import engine_from_config, pool
from sqlmodel import SQLModel

import shared.api_keys.models  # noqa: F401
import shared.audit.models  # noqa: F401  (registers the tables on SQLModel.metadata)
import shared.auth.models  # noqa: F401
import shared.events.models  # noqa: F401
import shared.handoffs.models  # noqa: F401
import shared.retention.models  # noqa: F401
import shared.routing.models  # noqa: F401
import shared.webhooks.models  # noqa: F401
from shared.core.settings import Settings

config = context.config
if not config.get_main_option("sqlalchemy.url"):
    default_url = Settings.model_fields["database_url"].default
    url = os.environ.get("ESCALATIONS_DATABASE_URL", default_url)
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))

target_metadata = SQLModel.metadata


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with connectable.connect() as connection:
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
