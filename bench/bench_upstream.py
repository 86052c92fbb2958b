#!/usr/bin/env python
"""Benchmark the upstream proxy: ``pip download`` of 20 public projects through extrapypi.

What it does, all on 127.0.0.1 and bounded in time:

1. builds N public projects (a wheel each, with its PEP 658 ``.metadata``) as a static PEP 503
   tree, served by nginx: that is the upstream (a fast one, so the proxy's own cost shows);
2. starts ``pserve`` (production-like: bcrypt cost 12, waitress with 8 threads, a fresh SQLite
   database, local storage) with ``extrapypi.upstream.url`` pointing at that nginx;
3. interleaves, for ``--reps`` rounds: *cold* (the upstream cache emptied: database rows and
   stored files) through extrapypi vs straight from the upstream, and *warm* (everything cached)
   through extrapypi vs nginx serving the same files statically;
4. prints the median and worst of each, and the ratios (targets: warm <= 1.2x, cold <= 1.5x).

Run from a checkout with the test extras installed:  ``.venv/bin/python bench/bench_upstream.py``
"""

import argparse
import base64
import hashlib
import html
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from bench_index import Process, free_port, log, pip_download, ratio, start_nginx  # noqa: E402
from conftest import write_ini  # noqa: E402
from dists import wheel_bytes  # noqa: E402

from extrapypi import schema  # noqa: E402
from extrapypi.models import UpstreamFile, UpstreamPage  # noqa: E402

USERNAME, PASSWORD = "bench", "bench-password-1"


class StaticUpstream:
    """What ``start_nginx`` needs: ``work`` and ``static`` (the tree it serves)."""

    def __init__(self, work: Path, projects: int):
        self.work = work
        self.static = work / "www"
        self.names = [f"public-{i:03d}" for i in range(projects)]
        for name in self.names:
            filename, content, metadata = wheel_bytes(
                name, "1.0", description="x" * 20_000, summary="a public project"
            )
            files = self.static / "files" / name
            files.mkdir(parents=True)
            (files / filename).write_bytes(content)
            (files / (filename + ".metadata")).write_bytes(metadata.encode())
            sha = hashlib.sha256(content).hexdigest()
            metadata_sha = hashlib.sha256(metadata.encode()).hexdigest()
            page = self.static / "simple" / name
            page.mkdir(parents=True)
            (page / "index.html").write_text(
                "<!DOCTYPE html><html><body>"
                f'<a href="../../files/{name}/{filename}#sha256={sha}" '
                f'data-requires-python="{html.escape(">=3.8")}" '
                f'data-core-metadata="sha256={metadata_sha}">{filename}</a>'
                "</body></html>"
            )
        (self.static / "simple" / "index.html").write_text(
            "".join(f'<a href="{n}/">{n}</a>' for n in self.names)
        )


def start_proxy(work: Path, upstream_url: str) -> tuple[Process, int, sa.Engine, Path]:
    storage = work / "packages"
    storage.mkdir(parents=True)
    port = free_port()
    settings = {
        "pyramid.reload_templates": "false",
        "sqlalchemy.url": f"sqlite:///{work / 'extrapypi.sqlite'}",
        "retry.attempts": "3",
        "extrapypi.secret": base64.b64encode(os.urandom(24)).decode(),
        "extrapypi.storage": "local",
        "extrapypi.storage.path": str(storage),
        "extrapypi.upstream.url": upstream_url,
    }
    ini = write_ini(work / "bench.ini", settings, port=port)
    schema.upgrade(ini)
    from extrapypi.models import get_engine
    from extrapypi.permissions import Role
    from extrapypi.services.accounts import NewUser, create_user
    from extrapypi.services.passwords import NO_POLICY

    engine = get_engine(settings)
    with sa.orm.Session(engine) as session, session.begin():
        create_user(
            session,
            NewUser(USERNAME, PASSWORD, Role.INSTALLER, "", True),
            rounds=12,
            policy=NO_POLICY,
        )
    pserve = os.path.join(os.path.dirname(sys.executable), "pserve")
    process = Process("pserve", [pserve, ini], work / "pserve.log")
    process.wait_http(f"http://127.0.0.1:{port}/ping", timeout=30)
    return process, port, engine, storage


def empty_cache(engine: sa.Engine, storage: Path) -> None:
    with engine.begin() as connection:
        connection.execute(sa.delete(UpstreamFile))
        connection.execute(sa.delete(UpstreamPage))
    for entry in storage.iterdir():
        if entry.name.startswith("~upstream~"):
            shutil.rmtree(entry)


def run(args) -> dict:
    work = Path(tempfile.mkdtemp(prefix="extrapypi-bench-upstream-"))
    processes: list[Process] = []
    try:
        log(f"building {args.projects} public projects")
        upstream = StaticUpstream(work / "upstream", args.projects)
        nginx, nginx_port = start_nginx(upstream)
        processes.append(nginx)
        static = f"http://127.0.0.1:{nginx_port}/simple/"
        server, port, engine, storage = start_proxy(work / "proxy", static)
        processes.append(server)
        ours = f"http://{USERNAME}:{PASSWORD}@127.0.0.1:{port}/simple/"
        names = upstream.names
        timings: dict[str, list[float]] = {"cold": [], "direct": [], "warm": [], "nginx": []}
        for rep in range(args.reps):
            empty_cache(engine, storage)
            timings["cold"].append(pip_download(ours, names, work))
            timings["direct"].append(pip_download(static, names, work))
            timings["warm"].append(pip_download(ours, names, work))
            timings["nginx"].append(pip_download(static, names, work))
            log(f"rep {rep + 1}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in timings.items()))
        medians = {k: statistics.median(v) for k, v in timings.items()}
        worst = {k: max(v) for k, v in timings.items()}
        return {
            "projects": args.projects,
            "reps": args.reps,
            "median_s": {k: round(v, 2) for k, v in medians.items()},
            "worst_s": {k: round(v, 2) for k, v in worst.items()},
            "warm_vs_nginx": ratio(medians["warm"], medians["nginx"]),
            "warm_vs_nginx_worst": ratio(worst["warm"], worst["nginx"]),
            "cold_vs_direct": ratio(medians["cold"], medians["direct"]),
            "cold_vs_direct_worst": ratio(worst["cold"], worst["direct"]),
        }
    finally:
        for process in reversed(processes):
            process.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--projects", type=int, default=20, help="public projects (default 20)")
    parser.add_argument("--reps", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    print(json.dumps(run(parser.parse_args()), indent=2))


if __name__ == "__main__":
    main()
