#!/usr/bin/env python
"""Benchmark the nginx front (``extrapypi nginx-config``) against nginx serving the same pages as
plain files (no access control), on one index, side by side, interleaved.

What it does, all on 127.0.0.1 and bounded in time (helpers from ``bench_index.py``):

1. builds N projects x 4 files straight into a fresh SQLite database and storage directory, and
   the same pages as a static tree for plain nginx;
2. writes the pages directory (``extrapypi front build``), starts ``pserve`` (bcrypt cost 12) with
   the front on, plain nginx on the static tree, and nginx with the printed front configuration;
3. measures, in ``--reps`` interleaved repetitions, ``/simple/<name>/`` with ``wrk`` (Basic auth
   on every request) and ``pip download --no-deps`` of 20 projects through the front and through
   plain nginx; prints medians, the worst repetition and the ratios against the targets
   (project page >= 0.5x plain nginx's req/s, pip <= 1.05x plain nginx's time).

Run from a checkout with the test extras installed:  ``.venv/bin/python bench/bench_front.py``
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_index import (
    AUTH,
    PASSWORD,
    PROJECT_PAGE,
    USERNAME,
    Process,
    Site,
    check_page,
    free_port,
    log,
    pip_download,
    project_name,
    start_extrapypi,
    start_nginx,
    wrk,
)
from nginx_server import front_config, nginx_conf  # tests/ (on the path bench_index sets)

PAGE_TARGET = 0.5  # front req/s over plain nginx's, at least
PIP_TARGET = 1.05  # front time over plain nginx's, at most


class FrontSite(Site):
    """The benchmark site with the front's settings in its ini."""

    def write_ini(self) -> None:
        super().write_ini()
        text = self.ini.read_text()
        front = (
            f"extrapypi.front.pages_dir = {self.work / 'pages'}\n"
            f"extrapypi.front.auth_cache_dir = {self.work / 'auth-cache'}\n"
        )
        self.ini.write_text(text.replace("[app:main]\n", "[app:main]\n" + front, 1))


def tool(name: str) -> str:
    return os.path.join(os.path.dirname(sys.executable), name)


def start_front(site: Site) -> tuple[Process, int]:
    """nginx with the configuration ``extrapypi nginx-config`` prints, in the temp dir."""
    port = free_port()
    prefix = site.work / f"front-{port}"
    (prefix / "front.conf").parent.mkdir(parents=True)
    (prefix / "front.conf").write_text(front_config(tool("extrapypi"), str(site.ini), port))
    conf = nginx_conf(prefix, prefix / "front.conf", workers="auto")
    process = Process("nginx front", ["nginx", "-p", str(prefix), "-c", str(conf)], prefix / "out")
    process.wait_http(f"http://127.0.0.1:{port}/simple/", headers={"Authorization": AUTH})
    return process, port


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "all": values}


def run(args) -> dict:
    work = Path(tempfile.mkdtemp(prefix="extrapypi-bench-front-"))
    processes: list[Process] = []
    try:
        site = FrontSite(work)
        site.create()
        log(f"building {args.projects} projects x 4 files")
        site.add_projects(args.projects)
        site.write_static()
        log("built; writing the pages directory (extrapypi front build)")
        subprocess.run([tool("extrapypi"), "front", "build", str(site.ini)], check=True)
        log("pages written; starting the servers")
        server, _ = start_extrapypi(site)
        processes.append(server)
        static, static_port = start_nginx(site)
        processes.append(static)
        front, front_port = start_front(site)
        processes.append(front)
        headers = {"Authorization": AUTH}
        page = f"/simple/{PROJECT_PAGE}/"
        urls = {
            "front": f"http://127.0.0.1:{front_port}",
            "nginx": f"http://127.0.0.1:{static_port}",
        }
        for url in urls.values():
            check_page(url + page, headers)
        names = [project_name(i) for i in range(20)]
        indexes = {
            "front": f"http://{USERNAME}:{PASSWORD}@127.0.0.1:{front_port}/simple/",
            "nginx": urls["nginx"] + "/simple/",
        }
        rps: dict[str, list[float]] = {"front": [], "nginx": []}
        p99: dict[str, list[float]] = {"front": [], "nginx": []}
        pip: dict[str, list[float]] = {"front": [], "nginx": []}
        for rep in range(args.reps):
            for label in ("front", "nginx") if rep % 2 == 0 else ("nginx", "front"):
                figures = wrk(urls[label] + page, args, headers)
                if figures.get("non_2xx"):
                    raise RuntimeError(f"{label}: {figures['non_2xx']} non-2xx answers")
                rps[label].append(figures["rps"])
                p99[label].append(figures["p99_ms"])
                pip[label].append(pip_download(indexes[label], names, work))
            log(f"rep {rep + 1}: " + json.dumps({k: (rps[k][-1], pip[k][-1]) for k in rps}))
        return {
            "projects": args.projects,
            "page_rps": {k: summary(v) for k, v in rps.items()},
            "page_p99_ms": {k: summary(v) for k, v in p99.items()},
            "pip_download_20_s": {k: summary(v) for k, v in pip.items()},
            "page_ratio_median": statistics.median(rps["front"]) / statistics.median(rps["nginx"]),
            "page_ratio_worst": min(f / n for f, n in zip(rps["front"], rps["nginx"], strict=True)),
            "pip_ratio_median": statistics.median(pip["front"]) / statistics.median(pip["nginx"]),
            "pip_ratio_worst": max(f / n for f, n in zip(pip["front"], pip["nginx"], strict=True)),
        }
    finally:
        for process in processes:
            process.stop()
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def report(results: dict) -> str:
    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    rps, pip = results["page_rps"], results["pip_download_20_s"]
    p99 = results["page_p99_ms"]
    lines = [
        f"{results['projects']} projects x 4 files, wrk Basic auth on every request, "
        f"{len(rps['front']['all'])} interleaved repetitions (median; worst repetition's ratio)",
        "| | nginx serving the pages as files | extrapypi behind the nginx front | ratio |",
        "|---|---|---|---|",
        f"| `/simple/<name>/` req/s (p99) | {rps['nginx']['median']:,.0f} "
        f"({statistics.median(p99['nginx']['all']):.1f} ms) | {rps['front']['median']:,.0f} "
        f"({statistics.median(p99['front']['all']):.1f} ms) | {results['page_ratio_median']:.2f}x "
        f"(worst {results['page_ratio_worst']:.2f}x; target >= {PAGE_TARGET}x: "
        f"{verdict(results['page_ratio_worst'] >= PAGE_TARGET)}) |",
        f"| `pip download` of 20 projects | {pip['nginx']['median']:.2f} s | "
        f"{pip['front']['median']:.2f} s | {results['pip_ratio_median']:.2f}x "
        f"(worst {results['pip_ratio_worst']:.2f}x; target <= {PIP_TARGET}x: "
        f"{verdict(results['pip_ratio_worst'] <= PIP_TARGET)}) |",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--projects", type=int, default=1000, help="index size (default 1000)")
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions (>= 3)")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (-t)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (-c)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    for name in ("wrk", "nginx"):
        if shutil.which(name) is None:
            parser.error(f"{name} is not installed (Debian: apt-get install {name})")
    results = run(args)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
