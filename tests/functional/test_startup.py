"""Start-up: what a server that only serves pip loads, and how long it takes to answer /ping.

Modules only some requests need (S3, description rendering, upload parsing, highlighting) are
imported where they are used, never at start-up. Bounds here are generous (a shared CI machine):
they catch a regression such as a bcrypt hash or a heavy import back on the start-up path.
"""

import json
import os
import subprocess
import sys
import textwrap
import time

from conftest import free_port, start_server, write_ini

#: Imported lazily, where used (``storage/s3.py``, ``services/render_worker.py``,
#: ``views/upload.py``, the description pages, ``services/oidc.py``, ``services/upstream.py``,
#: the first page rendered from a template, ``services/uploads.py``), or only with the database
#: that needs them (``models/retryable.py``).
LAZY = (
    "boto3",
    "botocore",
    "docutils",
    "readme_renderer",
    "multipart",
    "pygments",
    "cmarkgfm",
    "jwt",
    "cryptography",
    "urllib3",
    "jinja2",
    "pyramid_jinja2",
    "packaging.metadata",
    "psycopg",
    "psycopg2",
    "pymysql",
    "sqlalchemy.dialects.postgresql",
)
#: What a database's driver brings along when that database is used.
DRIVER_MODULES = {
    "postgresql": {"psycopg", "sqlalchemy.dialects.postgresql"},
    "mysql": {"pymysql", "cryptography"},
}


def backend_of(url: str) -> str:
    return url.split(":", 1)[0].split("+", 1)[0]


def test_heavy_modules_are_not_imported_by_app_creation(base_settings):
    script = textwrap.dedent(
        """
        import json, sys
        from extrapypi import main
        main({}, **json.loads(sys.argv[1]))
        print(json.dumps(sorted(name for name in json.loads(sys.argv[2]) if name in sys.modules)))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, json.dumps(base_settings), json.dumps(LAZY)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    loaded = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert loaded == DRIVER_MODULES.get(backend_of(base_settings["sqlalchemy.url"]), set())


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_app_creation_hashes_nothing(base_settings):
    """At bcrypt cost 17 one hash takes 8 s: the app is made without any, on no thread either
    (the timing-safe dummy hash for unknown usernames costs nothing to make,
    ``accounts.dummy_hash``). The CPU time counts every thread, 4 s after ``main()`` returned."""
    script = textwrap.dedent(
        """
        import json, sys, time
        from extrapypi import main
        main({}, **json.loads(sys.argv[1]))
        time.sleep(4)
        print(time.process_time())
        """
    )
    settings = {**base_settings, "extrapypi.bcrypt_rounds": "17"}
    result = subprocess.run(
        [sys.executable, "-c", script, json.dumps(settings)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    cpu = float(result.stdout.strip().splitlines()[-1])
    # about 0.7 s of CPU on a quiet machine, under 2 s on a busy one
    assert cpu < 3.5, f"creating the app took {cpu:.2f} s of CPU"


#: The RSS (MB) of each database's driver, on top of a SQLite server's.
DRIVER_MB = {"postgresql": 15, "mysql": 10}


def test_pserve_answers_ping_soon_after_start_and_stays_small(base_settings, tmp_path):
    """With production's bcrypt cost. Idle memory after the first answer: about 70 MB with
    SQLite (Pyramid and SQLAlchemy's ORM alone take 54 MB), 95 MB before the drivers of other
    databases were left unloaded."""
    port = free_port()
    settings = {**base_settings, "extrapypi.bcrypt_rounds": "12"}
    ini = write_ini(tmp_path / "start.ini", settings, port=port)
    started = time.monotonic()
    server = start_server(ini, port, tmp_path / "pserve.log")
    try:
        elapsed = time.monotonic() - started
        cpu = cpu_seconds(server.process.pid)
        time.sleep(1)
        rss = rss_mb(server.process.pid)
        # about 1 s of CPU on a quiet 2-core machine; the wall time bound allows for a busy one
        assert cpu < 5, f"start-up took {cpu:.2f} s of CPU"
        assert elapsed < 30, f"start-up took {elapsed:.2f} s"
        bound = 85 + DRIVER_MB.get(backend_of(settings["sqlalchemy.url"]), 0)
        assert rss < bound, f"idle after start-up: {rss:.0f} MB"
    finally:
        server.process.terminate()
        server.process.wait(timeout=10)
