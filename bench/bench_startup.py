"""Start-up of ``pserve production.ini``: import time, time to the first ``/ping``, idle RSS.

Copies ``production.ini`` into a temporary directory (its ``%(here)s`` paths then point there),
listens on a free port, creates the SQLite schema, then starts ``pserve`` ``--reps`` times and
prints the median (and the worst) of:

- ``import``: wall time of ``python -c "from extrapypi import main"`` minus ``python -c pass``;
- ``ping``: wall time from starting ``pserve`` to the first ``pong`` (polled every 10 ms);
- ``cpu``: CPU time (user + system) the server used up to that answer;
- ``rss``: its resident memory 1 s after the answer, idle (``VmRSS``);

and the same for a bare Pyramid app (``bare_pyramid.py``, one view) under the same ``pserve`` and
waitress settings: the floor that Pyramid, waitress and PasteDeploy set. Our modules are
byte-compiled first (as an installed wheel is), whatever ``PYTHONDONTWRITEBYTECODE`` says.

Run it next to another build to compare: on a shared machine read the ratios, not the seconds::

    .venv/bin/python bench/bench_startup.py --reps 5
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from conftest import free_port  # noqa: E402

from extrapypi import schema  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def production_copy(work: Path) -> tuple[Path, Path, int]:
    """``production.ini`` in ``work`` on a free port with a real secret, its schema created;
    and a copy that serves the bare Pyramid app instead."""
    port = free_port()
    text = (ROOT / "production.ini").read_text()
    text = re.sub(r"(?m)^listen = .*$", f"listen = 127.0.0.1:{port}", text)
    text = re.sub(r"(?m)^extrapypi.secret = .*$", "extrapypi.secret = " + "s" * 40, text)
    (work / "var" / "packages").mkdir(parents=True)
    ini = work / "production.ini"
    ini.write_text(text)
    schema.upgrade(str(ini))
    bare = work / "bare.ini"
    bare.write_text(
        re.sub(
            r"(?m)^use = egg:extrapypi$", f"use = call:bare_pyramid:make_app\npages = {work}", text
        )
    )
    return ini, bare, port


def wall(command: list[str], source: str = "") -> float:
    started = time.monotonic()
    subprocess.run(command, check=True, env=environment(source))
    return time.monotonic() - started


def environment(source: str = "") -> dict[str, str]:
    """Byte code written and read (as from an installed wheel); ``bare_pyramid`` importable;
    ``source``, a checkout's ``src``, imported instead of this one (``--before``)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    paths = [source, str(ROOT / "bench"), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, paths))
    return env


def start_once(ini: Path, port: int, log: Path, source: str = "") -> dict[str, float]:
    pserve = os.path.join(os.path.dirname(sys.executable), "pserve")
    started = time.monotonic()
    process = subprocess.Popen(
        [pserve, str(ini)], stdout=log.open("w"), stderr=subprocess.STDOUT, env=environment(source)
    )
    try:
        deadline = started + 60
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"pserve did not answer: {log.read_text()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1) as answer:
                    if answer.read() == b"pong":
                        break
            except OSError:
                time.sleep(0.01)
        figures = {"ping": time.monotonic() - started, "cpu": cpu_seconds(process.pid)}
        time.sleep(1.0)
        figures["rss"] = rss_mb(process.pid)
        return figures
    finally:
        process.terminate()
        process.wait(timeout=10)


UNITS = {"import": "s", "ping": "s", "cpu": "s", "rss": "MB"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3, help="repetitions (median and worst)")
    parser.add_argument(
        "--before",
        metavar="SRC",
        help="also start the extrapypi in this directory (another checkout's src/, e.g. from "
        "`git archive REV src | tar -x -C /tmp/before`), as the target 'before'",
    )
    args = parser.parse_args()
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as directory:
        work = Path(directory)
        ini, bare_ini, port = production_copy(work)
        # (name, module imported for the import time, ini, source tree)
        targets = [("extrapypi", "extrapypi", ini, "")]
        if args.before:
            targets.append(("before", "extrapypi", ini, str(Path(args.before).resolve())))
        targets.append(("bare-pyramid", "bare_pyramid", bare_ini, ""))
        for _, _, config, source in targets:  # warm-up: byte code, lazy imports included
            wall([python, "-c", "import extrapypi.scripts.cli; import extrapypi"], source)
            start_once(config, port, work / "pserve.log", source)
        runs = {name: {unit: [] for unit in UNITS} for name, *_ in targets}
        load = os.getloadavg()[0]
        for _ in range(args.reps):
            nothing = wall([python, "-c", "pass"])
            for name, module, config, source in targets:
                imported = wall([python, "-c", f"import {module}"], source) - nothing
                runs[name]["import"].append(imported)
                for unit, value in start_once(config, port, work / "pserve.log", source).items():
                    runs[name][unit].append(value)
    print(
        f"pserve production.ini, medians of {args.reps} interleaved repetitions (worst), "
        f"load average {load:.1f} at the start, {os.cpu_count()} CPUs"
    )
    print("| | " + " | ".join(UNITS) + " |")
    print("|---" * (len(UNITS) + 1) + "|")
    for name, figures in runs.items():
        cells = [
            f"{statistics.median(v):.2f} {UNITS[unit]} ({max(v):.2f})"
            for unit, v in figures.items()
        ]
        print(f"| {name} | " + " | ".join(cells) + " |")
    for other in [name for name in runs if name != "extrapypi"]:
        ratios = [
            f"{unit} {statistics.median(runs['extrapypi'][unit]) / statistics.median(v):.2f}x"
            for unit, v in runs[other].items()
        ]
        print(f"- extrapypi / {other}: " + ", ".join(ratios))


if __name__ == "__main__":
    main()
