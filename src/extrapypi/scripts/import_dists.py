"""``python -m extrapypi.scripts.import_dists <ini> DIR [--user NAME]``: import a directory.

What ``extrapypi import`` runs. Exit code 0 when every file was imported or already there, 1 when
some were refused (each is listed with its reason) or the import could not start, 2 for usage.
"""

import argparse
import os
import sys

from pyramid.paster import bootstrap, setup_logging

from ..services.importer import ImportError_, import_directory, iter_candidates
from ..services.restore import export_root_of
from ..services.uploads import Limits
from ..settings import ConfigurationError, get_app_settings
from .progress import THRESHOLD, progress


def build_parser(prog: str = "extrapypi import") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Import the wheels and sdists found under DIR (a pypiserver packages "
        "directory or any dump of files): metadata is read from each file and checked as "
        "for an upload; files already in the index are skipped, so a re-run is harmless.",
    )
    parser.add_argument("config_uri", help="the ini file, e.g. production.ini")
    parser.add_argument("directory", help="the directory to import (searched recursively)")
    parser.add_argument(
        "--user",
        default=None,
        help="record this user as uploader, and as maintainer of the packages it creates",
    )
    parser.add_argument("--quiet", action="store_true", help="print only refusals and totals")
    return parser


def run(args: argparse.Namespace) -> int:
    setup_logging(args.config_uri)
    export_root = export_root_of(args.directory)
    if export_root is not None:
        print(
            f"extrapypi import: {args.directory} is the files/ of an export: "
            f"`extrapypi import INI {export_root}` also restores users, maintainers, yanks and "
            "upload times.",
            file=sys.stderr,
        )
    try:
        with bootstrap(args.config_uri) as env:
            registry = env["registry"]
            settings = get_app_settings(registry)
            candidates = (
                list(iter_candidates(args.directory)) if os.path.isdir(args.directory) else []
            )
            with progress(len(candidates), "files") as advance:
                bar = len(candidates) >= THRESHOLD and sys.stderr.isatty()

                def report_line(line: str | None) -> None:
                    advance()
                    if line is not None and not (args.quiet or bar):
                        print(line)

                report = import_directory(
                    registry["dbsession_factory"],
                    registry["extrapypi.storage"],
                    args.directory,
                    limits=Limits(settings.upload_limit_bytes, settings.project_limit_bytes),
                    username=args.user,
                    progress=report_line,
                    candidates=candidates,
                )
    except (ConfigurationError, ImportError_) as error:
        print(f"extrapypi import: {error}", file=sys.stderr)
        return 1
    for path, reason in report.refused:
        print(f"refused {path}: {reason}", file=sys.stderr)
    print(f"extrapypi import: {report.summary()}")
    return 1 if report.refused else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
