"""Column types that behave the same on SQLite, PostgreSQL and MySQL/MariaDB."""

from sqlalchemy import String
from sqlalchemy.dialects import mysql


def ExactString(length: int) -> String:
    """A string compared byte for byte: MySQL's default collation would fold case."""
    return String(length).with_variant(
        mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
    )
