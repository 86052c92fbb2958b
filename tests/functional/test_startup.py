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
#: ``views/upload.py``, the description pages).
LAZY = ("boto3", "botocore", "docutils", "readme_renderer", "multipart", "pygments", "cmarkgfm")


def test_heavy_modules_are_not_imported_by_app_creation(base_settings):
    script = textwrap.dedent(
        """
        import json, sys
        from extrapypi import main
        main({}, **json.loads(sys.argv[1]))
        loaded = sorted({name.split(".")[0] for name in sys.modules} & set(json.loads(sys.argv[2])))
        print(json.dumps(loaded))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, json.dumps(base_settings), json.dumps(LAZY)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_pserve_answers_ping_soon_after_start(base_settings, tmp_path):
    """With production's bcrypt cost: the timing-safe dummy hash is made off the start-up path."""
    port = free_port()
    settings = {**base_settings, "extrapypi.bcrypt_rounds": "12"}
    ini = write_ini(tmp_path / "start.ini", settings, port=port)
    started = time.monotonic()
    server = start_server(ini, port, tmp_path / "pserve.log")
    try:
        elapsed = time.monotonic() - started
        cpu = cpu_seconds(server.process.pid)
        # about 1 s of CPU on a quiet 2-core machine; the wall time bound allows for a busy one
        assert cpu < 6, f"start-up took {cpu:.2f} s of CPU"
        assert elapsed < 30, f"start-up took {elapsed:.2f} s"
    finally:
        server.process.terminate()
        server.process.wait(timeout=10)
