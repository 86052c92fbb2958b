"""Run the alembic migrations that ship inside the package (``extrapypi.migrations``)."""

from pathlib import Path

from alembic.config import Config

from alembic import command

PACKAGE_DIR = Path(__file__).resolve().parent


def migrations_dir() -> str:
    """``extrapypi/migrations`` when installed; the top-level ``alembic/`` in a source checkout."""
    for candidate in (PACKAGE_DIR / "migrations", PACKAGE_DIR.parent.parent / "alembic"):
        if (candidate / "env.py").is_file():
            return str(candidate)
    raise RuntimeError(f"the migrations are missing from this installation ({PACKAGE_DIR})")


def alembic_config(ini_path: str, connection=None) -> Config:
    config = Config(ini_path, ini_section="alembic")
    config.set_main_option("script_location", migrations_dir().replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(ini_path: str, revision: str = "head", connection=None) -> None:
    command.upgrade(alembic_config(ini_path, connection), revision)


def downgrade(ini_path: str, revision: str = "base", connection=None) -> None:
    command.downgrade(alembic_config(ini_path, connection), revision)
