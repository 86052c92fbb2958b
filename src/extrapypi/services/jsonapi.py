"""PyPI's JSON API (``/pypi/<name>/json``) as data: the keys poetry, pip-audit &c. read."""

from collections.abc import Callable
from urllib.parse import quote

from packaging.version import Version
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from ..models import File, Package, Release
from .index import format_time
from .journal import current_serial
from .status import status_json

PACKAGE_TYPES = {"bdist_wheel", "sdist", "bdist_egg", "bdist_wininst", "bdist_msi", "bdist_rpm"}


def releases_with_files(dbsession: Session, package: Package) -> list[Release]:
    """Every release, newest first, files loaded in one more query (never one per release)."""
    return list(
        dbsession.scalars(
            select(Release)
            .where(Release.package_id == package.id)
            .order_by(Release.sort_key.desc())
            .options(selectinload(Release.files))
        )
    )


def shown_release(releases: list[Release]) -> Release | None:
    """The release ``/pypi/<name>/json`` describes: newest final non-yanked, as on PyPI."""
    for wanted in (
        lambda r: not r.yanked and not Version(r.version).is_prerelease,
        lambda r: not r.yanked,
        lambda r: True,
    ):
        for release in releases:  # newest first
            if wanted(release):
                return release
    return None


def file_json(file: File, release: Release, url: str) -> dict:
    return {
        "comment_text": "",
        "digests": {"sha256": file.sha256, "md5": file.md5, "blake2b_256": file.blake2b_256},
        "downloads": -1,
        "filename": file.filename,
        "has_sig": False,
        "md5_digest": file.md5,
        "packagetype": file.filetype if file.filetype in PACKAGE_TYPES else "sdist",
        "python_version": file.python_version,
        "requires_python": file.requires_python or None,
        "size": file.size,
        "upload_time": file.upload_time.strftime("%Y-%m-%dT%H:%M:%S"),
        "upload_time_iso_8601": format_time(file.upload_time),
        "url": url,
        "yanked": release.yanked,
        "yanked_reason": release.yanked_reason or None,
    }


def info_json(package: Package, release: Release, project_url: str, release_url: str) -> dict:
    return {
        "author": release.author,
        "author_email": release.author_email,
        "bugtrack_url": None,
        "classifiers": list(release.classifiers or []),
        "description": release.description,
        "description_content_type": release.description_content_type or None,
        "docs_url": None,
        "download_url": "",
        "home_page": release.home_page,
        "keywords": release.keywords,
        "license": release.license,
        "license_expression": release.license_expression or None,
        "maintainer": release.maintainer,
        "maintainer_email": release.maintainer_email,
        "name": package.name,
        "package_url": project_url,
        "platform": None,
        "project_url": project_url,
        "project_urls": {label: url for label, url in (release.project_urls or [])} or None,
        "provides_extra": list(release.provides_extra or []) or None,
        "release_url": release_url,
        "requires_dist": list(release.requires_dist or []) or None,
        "requires_python": release.requires_python or None,
        "summary": release.summary,
        "version": release.version,
        "yanked": release.yanked,
        "yanked_reason": release.yanked_reason or None,
    }


def project_json(
    dbsession: Session,
    package: Package,
    version: str | None,
    file_url: Callable[[Release, File], str],
    project_url: Callable[[Release | None], str],
) -> dict | None:
    """``/pypi/<name>/json`` (``version`` None) or ``/pypi/<name>/<version>/json``.

    ``file_url(release, file)`` and ``project_url(release or None)`` make the absolute URLs; None
    when the package has no release at all (PyPI answers 404 then).
    """
    releases = releases_with_files(dbsession, package)
    if version is None:
        release = shown_release(releases)
    else:
        release = next((r for r in releases if r.version == version), None)
    if release is None:
        return None
    data = {
        "info": info_json(package, release, project_url(None), project_url(release)),
        "last_serial": current_serial(dbsession),
        "project-status": status_json(package.status, package.status_reason),
        "urls": [file_json(f, release, file_url(release, f)) for f in release.files],
        "vulnerabilities": [],
    }
    if version is None:
        data["releases"] = {
            r.version: [file_json(f, r, file_url(r, f)) for f in r.files]
            for r in reversed(releases)
        }
    return data


def file_path(package: Package, release: Release, file: File) -> str:
    """The download path under the site root (same place the simple index links to)."""
    return f"/packages/{package.normalized_name}/{quote(release.version)}/{quote(file.filename)}"
