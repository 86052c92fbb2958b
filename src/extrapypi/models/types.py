"""Column types that behave the same on SQLite, PostgreSQL and MySQL/MariaDB."""

from sqlalchemy import String, Text
from sqlalchemy.dialects import mysql


def ExactString(length: int) -> String:
    """A string compared byte for byte: MySQL's default collation would fold case."""
    return String(length).with_variant(
        mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
    )


def LongText() -> Text:
    """Text of a few MiB everywhere: MySQL's plain TEXT stops at 64 KiB (long READMEs)."""
    return Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
