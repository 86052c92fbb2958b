#!/usr/bin/env python
"""Token-authenticated ``/simple/<name>/`` against password-authenticated (cached) requests.

Builds a small index with ``bench_index.Site`` (SQLite, bcrypt cost 12 for the password), starts
``pserve``, creates a ``read`` API token for the same user, warms both caches, then runs
``wrk`` on the same project page with each ``Authorization`` header, interleaved (password,
token, password, token...) for ``--reps`` repetitions, and prints the medians and the ratio.
All on 127.0.0.1, bounded by ``--duration`` per run.

Run from a checkout with the test extras installed:  ``.venv/bin/python bench/bench_tokens.py``
"""

import argparse
import base64
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_index import (
    AUTH,
    PROJECT_PAGE,
    USERNAME,
    Site,
    check_page,
    log,
    start_extrapypi,
    wrk,
)
from sqlalchemy.orm import Session

from extrapypi.models import User
from extrapypi.services import tokens as token_service


def make_token(site: Site) -> str:
    with Session(site.engine) as dbsession, dbsession.begin():
        user = dbsession.query(User).filter_by(username=USERNAME).one()
        _row, token = token_service.create_token(dbsession, site.secret, user, "bench", "read")
    return token


def run(args) -> dict:
    work = Path(tempfile.mkdtemp(prefix="extrapypi-bench-tokens-"))
    server = None
    try:
        site = Site(work)
        site.create()
        site.add_projects(args.projects)
        token = make_token(site)
        server, _ = start_extrapypi(site)
        url = f"http://127.0.0.1:{site.port}/simple/{PROJECT_PAGE}/"
        basic = "Basic " + base64.b64encode(f"__token__:{token}".encode()).decode()
        kinds = {"password": {"Authorization": AUTH}, "token": {"Authorization": basic}}
        for headers in kinds.values():
            check_page(url, headers)  # 200, and the caches are warm
        figures: dict[str, list[dict]] = {kind: [] for kind in kinds}
        for rep in range(args.reps):
            for kind, headers in kinds.items():
                result = wrk(url, args, headers)
                if result.get("non_2xx"):
                    raise SystemExit(f"{kind}: {result['non_2xx']} non-2xx answers")
                figures[kind].append(result)
                log(f"rep {rep + 1} {kind}: {result['rps']:.0f} req/s, p99 {result['p99_ms']} ms")
        medians = {
            kind: {
                "rps": statistics.median(r["rps"] for r in results),
                "p99_ms": statistics.median(r["p99_ms"] for r in results),
            }
            for kind, results in figures.items()
        }
        medians["token_over_password_rps"] = round(
            medians["token"]["rps"] / medians["password"]["rps"], 2
        )
        return medians
    finally:
        if server is not None:
            server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--projects", type=int, default=100, help="projects in the index")
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (-t)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (-c)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    results = run(parser.parse_args(argv))
    for kind in ("password", "token"):
        figure = results[kind]
        print(f"{kind:>8}: {figure['rps']:.0f} req/s (median), p99 {figure['p99_ms']:.1f} ms")
    print(f"token / password (cached) throughput: {results['token_over_password_rps']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
