"""Restore an ``extrapypi export`` directory: the files and what the manifest says about them.

Each distribution goes through :func:`uploads.ingest` (validated like an upload, in a transaction
of its own, duplicates skipped), and its bytes must hash to the manifest's sha256. What the
files do not carry comes from the manifest, checked before it is written: release metadata
(validated like an upload form), upload times and uploaders, yanks with their reasons,
maintainers (users and teams), project status with its reason, teams with their members,
namespace grants, trusted publishers, API tokens (by their keyed hash: they work where
``extrapypi.secret`` is the same), and users, who get no password (exports hold none): they set
one before they can log in. ``.metadata`` files are not imported: ingest extracts each wheel's
METADATA again.

Teams, team maintainers, statuses and namespaces go through their services (validated and
journaled as the CLI's changes are), in an order those rules allow: users, then teams; each
package's files before its status (archived and quarantined projects take no new files); the
namespaces last, once every package exists (a package created inside a team's namespace would
otherwise get that team as a maintainer the original index may not have had); trusted
publishers and tokens after them.

The manifest is a JSON object whose top-level keys are sections (``packages``, ``users``,
``teams``, ``namespaces``); sections this version does not know are listed as ignored, so
exports of newer versions restore what this one understands. Running a restore twice changes
nothing.
"""

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import transaction
from sqlalchemy.orm import Session, sessionmaker

from ..models import ApiToken, TrustedPublisher, User, get_tm_session
from ..models.meta import utcnow
from ..storage import Storage
from . import namespaces as namespace_service
from . import oidc as oidc_service
from . import packages as package_service
from . import status as status_service
from . import teams as team_service
from . import tokens as token_service
from .accounts import AccountError, get_user, validate_email, validate_role, validate_username
from .export import FILES_DIR, FORMAT, FORMAT_VERSION, MANIFEST
from .names import InvalidName, InvalidVersion, canonical_version, normalize_name
from .uploads import ConcurrentUpload, Limits, UploadRefused, _release_metadata, ingest

#: The manifest sections this version restores; others are reported as ignored.
KNOWN_SECTIONS = {
    "format",
    "format_version",
    "exported",
    "serial",
    "packages",
    "users",
    "teams",
    "namespaces",
    "trusted_publishers",
    "api_tokens",
    "problems",
}
#: Keys of a package entry this version restores; others are reported (``packages[].KEY``).
KNOWN_PACKAGE_KEYS = {
    "name",
    "normalized_name",
    "summary",
    "created",
    "updated",
    "maintainers",
    "team_maintainers",
    "status",
    "status_reason",
    "releases",
}
#: Sections that must be lists when present.
LIST_SECTIONS = ("packages", "users", "teams", "namespaces", "trusted_publishers", "api_tokens")
#: A password hash no password matches: bcrypt refuses it, ``check_password`` says no.
NO_PASSWORD = "!restored-without-password"


class RestoreError(Exception):
    """The directory is not a usable export; nothing was changed."""


@dataclass
class RestoreReport:
    users_created: list[str] = field(default_factory=list)
    users_kept: list[str] = field(default_factory=list)
    teams_created: list[str] = field(default_factory=list)
    teams_kept: list[str] = field(default_factory=list)
    namespaces_created: list[str] = field(default_factory=list)
    namespaces_kept: list[str] = field(default_factory=list)
    publishers_created: list[str] = field(default_factory=list)
    tokens_created: list[str] = field(default_factory=list)
    imported: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    #: ``(what, reason)``, each refusal once
    refused: list[tuple[str, str]] = field(default_factory=list)
    ignored_sections: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = (
            f"{len(self.imported)} imported, {len(self.duplicates)} skipped (already there), "
            f"{len(self.refused)} refused; {len(self.users_created)} users created "
            f"(without passwords), {len(self.users_kept)} already there"
        )
        if self.teams_created or self.teams_kept:
            text += (
                f"; {len(self.teams_created)} teams created, {len(self.teams_kept)} already there"
            )
        if self.namespaces_created or self.namespaces_kept:
            text += (
                f"; {len(self.namespaces_created)} namespaces granted, "
                f"{len(self.namespaces_kept)} already there"
            )
        if self.publishers_created:
            text += f"; {len(self.publishers_created)} trusted publishers restored"
        if self.tokens_created:
            text += f"; {len(self.tokens_created)} API tokens restored"
        return text


def is_export(directory: str | Path) -> bool:
    return (Path(directory) / MANIFEST).is_file()


def read_manifest(directory: Path) -> dict:
    try:
        with open(directory / MANIFEST, encoding="utf-8") as stream:
            manifest = json.load(stream)
    except (OSError, ValueError) as error:
        raise RestoreError(f"cannot read {directory / MANIFEST}: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise RestoreError(f"{directory / MANIFEST} is not an extrapypi export manifest")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise RestoreError(
            f"{directory / MANIFEST} has format version {version!r}; this extrapypi reads up to "
            f"{FORMAT_VERSION}: upgrade extrapypi first"
        )
    for section in LIST_SECTIONS:
        if not isinstance(manifest.get(section, []), list):
            raise RestoreError(f"{directory / MANIFEST}: {section!r} is not a list")
    return manifest


def _time(value) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _text(entry: dict, key: str, default: str = "") -> str:
    value = entry.get(key, default)
    return value if isinstance(value, str) else default


def _names(entry: dict, key: str) -> list[str]:
    """A list of names from the manifest; anything else in it is not a name and is dropped."""
    values = entry.get(key)
    if not isinstance(values, list):
        return []
    return [value for value in values if isinstance(value, str)]


class _Restorer:
    def __init__(
        self,
        session_factory: sessionmaker,
        storage: Storage,
        directory: Path,
        limits,
        namespace_max_depth: int,
    ):
        self.session_factory = session_factory
        self.storage = storage
        self.directory = directory.resolve()
        self.limits = limits
        self.namespace_max_depth = namespace_max_depth
        self.report = RestoreReport()

    def transaction(self):
        tm = transaction.TransactionManager(explicit=True)
        return tm, get_tm_session(self.session_factory, tm)

    # --- users ---------------------------------------------------------------------------------

    def restore_user(self, entry: dict) -> None:
        name = _text(entry, "username")
        tm, dbsession = self.transaction()
        try:
            with tm:
                username = validate_username(name)
                if get_user(dbsession, username) is not None:
                    self.report.users_kept.append(username)
                    return
                user = User(
                    username=username,
                    email=validate_email(_text(entry, "email")),
                    password_hash=NO_PASSWORD,
                    role=validate_role(_text(entry, "role")).value,
                    is_active=entry.get("is_active") is not False,
                )
                if (created := _time(entry.get("created"))) is not None:
                    user.created = created
                user.last_login = _time(entry.get("last_login"))
                dbsession.add(user)
                dbsession.flush()
                self.report.users_created.append(username)
        except AccountError as error:
            self.report.refused.append((f"user {name!r}", str(error)))

    # --- teams and namespaces -------------------------------------------------------------------

    def restore_team(self, entry: dict) -> None:
        """The team (created through the teams service) and its members; missing ones are added."""
        name = _text(entry, "name")
        tm, dbsession = self.transaction()
        try:
            with tm:
                team = team_service.get_team(dbsession, name)
                if team is None:
                    team = team_service.create_team(dbsession, name, None)
                    if (created := _time(entry.get("created"))) is not None:
                        team.created = created
                    self.report.teams_created.append(team.name)
                else:
                    self.report.teams_kept.append(team.name)
                member_ids = {member.id for member in team.members}
                for username in _names(entry, "members"):
                    user = self.user(dbsession, username)
                    if user is None:
                        self.report.refused.append(
                            (f"member {username!r} of team {name!r}", "no such user")
                        )
                    elif user.id not in member_ids:
                        team_service.add_member(dbsession, team, user, None)
                        member_ids.add(user.id)
        except team_service.TeamError as error:
            self.report.refused.append((f"team {name!r}", str(error)))

    def restore_namespace(self, entry: dict) -> None:
        """A grant to ``USER`` or ``team:NAME``, checked by the namespaces service (depth limit,
        no overlap with another owner's grant); one already granted to the same owner is kept."""
        name, owner_text = _text(entry, "name"), _text(entry, "owner")
        tm, dbsession = self.transaction()
        try:
            with tm:
                if owner_text.startswith(team_service.TEAM_PREFIX):
                    owner = team_service.get_team(
                        dbsession, owner_text.removeprefix(team_service.TEAM_PREFIX)
                    )
                else:
                    owner = self.user(dbsession, owner_text)
                if owner is None:
                    raise namespace_service.NamespaceError(f"its owner {owner_text!r} is unknown")
                normalized = namespace_service.normalize_namespace(name)
                existing = namespace_service.get_namespace(dbsession, normalized)
                if existing is not None and existing.owner == namespace_service.owner_name(owner):
                    self.report.namespaces_kept.append(normalized)
                    return
                reserved = namespace_service.grant(
                    dbsession, name, owner, None, max_depth=self.namespace_max_depth
                )
                if (created := _time(entry.get("created"))) is not None:
                    reserved.created = created
                self.report.namespaces_created.append(reserved.name)
        except namespace_service.NamespaceError as error:
            self.report.refused.append((f"namespace {name!r}", str(error)))

    # --- trusted publishers and API tokens ------------------------------------------------------

    def restore_publisher(self, entry: dict) -> None:
        """A publisher of a restored package (or a pending one for a name still free), with the
        claims checked as ``publisher add`` checks them; one with the same claims is kept."""
        project, issuer = _text(entry, "project"), _text(entry, "issuer")
        what = f"trusted publisher for {project!r}"
        tm, dbsession = self.transaction()
        try:
            with tm:
                claims = entry.get("claims")
                if not isinstance(claims, dict):
                    raise oidc_service.PublisherError("its claims are not an object")
                claims = oidc_service.parse_claims([f"{k}={v}" for k, v in claims.items()])
                oidc_service.check_issuer_url(issuer)
                package = package_service.get_package(dbsession, project)
                pending = entry.get("pending") is True
                if pending == (package is not None):
                    raise oidc_service.PublisherError(
                        "its project exists now" if pending else "no such package"
                    )
                name = normalize_name(project)
                for existing in oidc_service.list_publishers(dbsession):
                    if (existing.project, existing.issuer, existing.claims) == (
                        name,
                        issuer,
                        claims,
                    ):
                        return
                publisher = TrustedPublisher(
                    package=package,
                    pending_name=name if pending else None,
                    issuer=issuer,
                    claims=claims,
                    created_by=self.user(dbsession, entry.get("created_by")),
                    created=_time(entry.get("created")) or utcnow(),
                )
                dbsession.add(publisher)
                self.report.publishers_created.append(name)
        except (oidc_service.PublisherError, oidc_service.OidcConfigError, InvalidName) as error:
            self.report.refused.append((what, str(error)))

    def restore_token(self, entry: dict) -> None:
        """A token by its id and keyed hash: it works again where ``extrapypi.secret`` is the
        same. One whose id exists is kept; one whose owner is unknown is refused."""
        token_id = _text(entry, "id")
        tm, dbsession = self.transaction()
        with tm:
            if token_service.split_token(f"{token_service.PREFIX}{token_id}-{'x' * 43}") is None:
                self.report.refused.append((f"API token {token_id[:20]!r}", "not a token id"))
                return
            if dbsession.get(ApiToken, token_id) is not None:
                return
            user = self.user(dbsession, entry.get("user"))
            secret_hash = _text(entry, "secret_hash")
            scope = _text(entry, "scope")
            if user is None or len(secret_hash) != 64 or scope not in token_service.Scope.ALL:
                self.report.refused.append(
                    (f"API token {token_id}", "unknown owner, scope or hash")
                )
                return
            dbsession.add(
                ApiToken(
                    id=token_id,
                    user=user,
                    name=_text(entry, "name")[: token_service.NAME_MAX] or token_id,
                    scope=scope,
                    projects=_text(entry, "projects")[:1024],
                    secret_hash=secret_hash,
                    created=_time(entry.get("created")) or utcnow(),
                    expires=_time(entry.get("expires")),
                    last_used=_time(entry.get("last_used")),
                    last_used_from=_text(entry, "last_used_from")[:64],
                    revoked=_time(entry.get("revoked")),
                    publisher=_text(entry, "publisher")[:255],
                    publisher_ids="",
                )
            )
            self.report.tokens_created.append(token_id)

    # --- files ---------------------------------------------------------------------------------

    def file_path(self, entry: dict) -> Path | None:
        relative = entry.get("path")
        if not isinstance(relative, str) or not relative:
            return None
        path = (self.directory / relative).resolve()
        if not path.is_relative_to(self.directory / FILES_DIR):
            raise UploadRefused(f"path {relative!r} leads out of the export's {FILES_DIR}/")
        return path

    def restore_file(self, package_entry: dict, release_entry: dict, entry: dict) -> None:
        filename = _text(entry, "filename")
        label = f"{FILES_DIR}/{package_entry.get('normalized_name')}/{filename}"
        for _attempt in range(3):
            try:
                outcome = self._restore_file_once(package_entry, release_entry, entry)
            except ConcurrentUpload:
                continue
            except UploadRefused as refusal:
                self.report.refused.append((label, str(refusal)))
                return
            except OSError as error:
                self.report.refused.append((label, f"cannot read the file ({error})"))
                return
            (self.report.imported if outcome else self.report.duplicates).append(label)
            return
        self.report.refused.append((label, "kept conflicting with concurrent writes; run again"))

    def _restore_file_once(self, package_entry: dict, release_entry: dict, entry: dict) -> bool:
        path = self.file_path(entry)
        filename = _text(entry, "filename")
        if path is None:
            raise UploadRefused("not in the export (it was missing when exported)")
        if path.name != filename:
            raise UploadRefused(f"the manifest's path names another file: {path.name!r}")
        tm, dbsession = self.transaction()
        with tm, open(path, "rb") as stream:
            if self._kept_in_closed_project(dbsession, package_entry, entry):
                return False
            # No uploader for ingest: it would make them a maintainer of a package it creates;
            # maintainers are the manifest's (restore_package), the uploader is set below.
            result = ingest(
                dbsession,
                self.storage,
                tm.get(),
                None,
                filename,
                stream,
                None,
                limits=self.limits,
            )
            if result.file.sha256 != _text(entry, "sha256"):
                raise UploadRefused(
                    f"its bytes have sha256 {result.file.sha256}, the manifest says "
                    f"{_text(entry, 'sha256')!r}"
                )
            if normalize_name(result.package.name) != package_entry.get("normalized_name"):
                raise UploadRefused("it belongs to another package than the manifest says")
            if not result.created:
                return False  # already there: a restore never overwrites
            file = result.file
            if (uploaded := _time(entry.get("upload_time"))) is not None:
                file.upload_time = uploaded
            file.uploader = self.user(dbsession, entry.get("uploader"))
            self.apply_release(dbsession, result.release, release_entry)
            file.requires_python = result.release.requires_python
            python_version = _text(entry, "python_version")
            if python_version and len(python_version) <= 50:
                file.python_version = python_version
            return True

    def _kept_in_closed_project(self, dbsession: Session, package_entry: dict, entry: dict) -> bool:
        """Whether the file is already in a project that takes no new files (archived or
        quarantined, as an earlier run of this restore left it): then it counts as already there.

        ingest refuses any upload to such a project before it looks for duplicates, so running
        the restore again would refuse every file of it. A file the project lacks is refused,
        with the way out.
        """
        package = package_service.get_package(dbsession, _text(package_entry, "name"))
        refusal = status_service.upload_refusal(package) if package is not None else None
        if refusal is None:
            return False
        existing = package_service.get_file(dbsession, _text(entry, "filename"))
        if existing is not None and existing.release.package_id == package.id:
            if existing.sha256 != _text(entry, "sha256"):
                raise UploadRefused(
                    f"the index has it with sha256 {existing.sha256}, the manifest says "
                    f"{_text(entry, 'sha256')!r}"
                )
            return True
        raise UploadRefused(
            f"{refusal}; to restore it, set the project active (extrapypi status set INI "
            f"{package.name} active) and import again: it sets the status back"
        )

    # --- releases and packages -----------------------------------------------------------------

    def user(self, dbsession: Session, username) -> User | None:
        return get_user(dbsession, username) if isinstance(username, str) and username else None

    def apply_release(self, dbsession: Session, release, entry: dict) -> None:
        """The manifest's metadata, checked as an upload form is; yank state; dates; uploader."""
        values = {
            key: entry.get(key)
            for key in (
                "metadata_version",
                "summary",
                "description_content_type",
                "requires_python",
                "requires_dist",
                "provides_extra",
                "author",
                "author_email",
                "maintainer",
                "maintainer_email",
                "license",
                "license_expression",
                "home_page",
                "keywords",
                "classifiers",
            )
            if entry.get(key) is not None
        }
        urls = entry.get("project_urls") or []
        if not isinstance(urls, list) or not all(
            isinstance(u, list) and len(u) == 2 and all(isinstance(p, str) for p in u) for u in urls
        ):
            raise UploadRefused("the manifest's project_urls are not [label, url] pairs")
        metadata = _release_metadata(values, urls, _text(entry, "description"))
        for key, value in vars(metadata).items():
            setattr(release, key, value)
        release.yanked = entry.get("yanked") is True
        release.yanked_reason = _text(entry, "yanked_reason")[:512] if release.yanked else ""
        if (created := _time(entry.get("created"))) is not None:
            release.created = created
        release.uploader = self.user(dbsession, entry.get("uploader"))

    def restore_package(self, entry: dict) -> None:
        """Releases without files, then maintainers (users and teams), summary, dates and, last,
        the status (after the files: an archived or quarantined project takes none)."""
        name = _text(entry, "name")
        tm, dbsession = self.transaction()
        try:
            with tm:
                if normalize_name(name) != entry.get("normalized_name"):
                    raise UploadRefused("its name and normalized name disagree")
                package = package_service.get_package(dbsession, name)
                if package is None:
                    package = package_service.create_package(dbsession, name, None)
                for release_entry in entry.get("releases") or []:
                    version = _text(release_entry, "version")
                    if release_entry.get("files"):
                        continue  # made with its files (or refused with them)
                    if package_service.get_release(dbsession, package, version) is None:
                        self._release_without_files(dbsession, package, release_entry)
                known = {user.id for user in package.maintainers}
                for username in entry.get("maintainers") or []:
                    user = self.user(dbsession, username)
                    if user is None:
                        self.report.refused.append(
                            (f"maintainer {username!r} of {name!r}", "no such user")
                        )
                    elif user.id not in known:
                        package.maintainers.append(user)
                self._restore_team_maintainers(dbsession, package, entry)
                package.name = name
                package.summary = _text(entry, "summary")[:512]
                if (created := _time(entry.get("created"))) is not None:
                    package.created = created
                if (updated := _time(entry.get("updated"))) is not None:
                    package.updated = updated
                self._restore_status(dbsession, package, entry)
        except (UploadRefused, InvalidName, team_service.TeamError) as error:
            self.report.refused.append((f"package {name!r}", str(error) or "invalid name"))

    def _restore_team_maintainers(self, dbsession: Session, package, entry: dict) -> None:
        known = {team.id for team in package.team_maintainers}
        for team_name in _names(entry, "team_maintainers"):
            team = team_service.get_team(dbsession, team_name)
            if team is None:
                self.report.refused.append(
                    (
                        f"maintainer {team_service.TEAM_PREFIX}{team_name} of {package.name!r}",
                        "no such team",
                    )
                )
            elif team.id not in known:
                team_service.add_team_maintainer(dbsession, package, team, None)
                known.add(team.id)

    def _restore_status(self, dbsession: Session, package, entry: dict) -> None:
        """The status service sets it (and journals it); the restore may quarantine, as the CLI
        may. An unknown status is refused; the rest of the package is kept."""
        if "status" not in entry:
            return  # an export of a version before project statuses
        try:
            status = status_service.parse_status(_text(entry, "status"))
        except status_service.StatusError as error:
            self.report.refused.append((f"status of {package.name!r}", str(error)))
            return
        status_service.set_status(
            dbsession,
            package,
            status,
            _text(entry, "status_reason"),
            None,
            may_quarantine=True,
        )

    def _release_without_files(self, dbsession: Session, package, entry: dict) -> None:
        version = _text(entry, "version")
        try:
            canonical_version(version)
        except InvalidVersion:
            raise UploadRefused(f"release {version!r}: not a PEP 440 version") from None
        release = package_service.create_release(
            dbsession, package, version, package_service.ReleaseMetadata(), None
        )
        self.apply_release(dbsession, release, entry)


def restore_export(
    session_factory: sessionmaker,
    storage: Storage,
    directory: str | Path,
    *,
    limits: Limits,
    namespace_max_depth: int = namespace_service.DEFAULT_MAX_DEPTH,
    progress: Callable[[str], None] | None = None,
) -> RestoreReport:
    """Restore users, teams, then every file of every release followed by its package's
    maintainers, dates and status, then the namespaces."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    restorer = _Restorer(session_factory, storage, directory, limits, namespace_max_depth)
    report = restorer.report
    packages = [entry for entry in manifest.get("packages", []) if isinstance(entry, dict)]
    unknown_package_keys = {key for entry in packages for key in entry} - KNOWN_PACKAGE_KEYS
    report.ignored_sections = sorted(set(manifest) - KNOWN_SECTIONS) + sorted(
        f"packages[].{key}" for key in unknown_package_keys
    )
    for entry in manifest.get("users", []):
        if isinstance(entry, dict):
            restorer.restore_user(entry)
    for entry in manifest.get("teams", []):
        if isinstance(entry, dict):
            restorer.restore_team(entry)
    for package_entry in packages:
        for release_entry in package_entry.get("releases") or []:
            if not isinstance(release_entry, dict):
                continue
            for file_entry in release_entry.get("files") or []:
                if isinstance(file_entry, dict):
                    restorer.restore_file(package_entry, release_entry, file_entry)
                    if progress is not None:
                        progress(_text(file_entry, "filename"))
        restorer.restore_package(package_entry)
    for entry in manifest.get("namespaces", []):
        if isinstance(entry, dict):
            restorer.restore_namespace(entry)
    for entry in manifest.get("trusted_publishers", []):
        if isinstance(entry, dict):
            restorer.restore_publisher(entry)
    for entry in manifest.get("api_tokens", []):
        if isinstance(entry, dict):
            restorer.restore_token(entry)
    return report


def export_root_of(directory: str) -> str | None:
    """The export a ``files/`` directory belongs to (the old documented restore pointed there)."""
    parent = os.path.dirname(os.path.abspath(directory))
    if os.path.basename(os.path.abspath(directory)) == FILES_DIR and is_export(parent):
        return parent
    return None
