"""The facts a package page shows from a release's core metadata: people, links, keywords."""

from dataclasses import dataclass
from email.utils import getaddresses

from ..models import Release


@dataclass(frozen=True)
class Person:
    name: str
    email: str


def people(names: str, emails: str) -> list[Person]:
    """Author/Maintainer and their ``-email`` fields as people, parsed as RFC 5322 address lists.

    ``Author-email`` from a pyproject.toml already holds ``"Name <addr>"`` (often several, comma
    separated); older metadata puts the name in ``Author`` and a bare address in ``Author-email``.
    """
    found: list[Person] = []
    emails = (emails or "").strip()
    if emails and "@" not in emails:
        found.append(Person(emails, ""))  # a name where an address belongs: keep it whole
    elif emails:
        for name, address in getaddresses([emails]):
            if name or address:
                found.append(Person(name.strip(), address.strip()))
    names = (names or "").strip()
    if names:
        if len(found) == 1 and not found[0].name:
            found[0] = Person(names, found[0].email)
        elif not any(p.name == names for p in found):
            found.insert(0, Person(names, ""))
    return found


def safe_links(release: Release) -> list[tuple[str, str]]:
    """Home page and project URLs, keeping only http(s) links (never ``javascript:``)."""
    links = []
    if release.home_page:
        links.append(("Homepage", release.home_page))
    for entry in release.project_urls or []:
        if isinstance(entry, list | tuple) and len(entry) == 2:
            links.append((str(entry[0]), str(entry[1])))
    return [
        (label, url)
        for label, url in links
        if url.strip().lower().startswith(("http://", "https://"))
    ]


def keywords(release: Release) -> list[str]:
    """Keywords as a list: core metadata separates them with commas (older tools: spaces)."""
    text = (release.keywords or "").strip()
    if not text:
        return []
    parts = text.split(",") if "," in text else text.split()
    return [part.strip() for part in parts if part.strip()]


@dataclass(frozen=True)
class ProjectFacts:
    links: list[tuple[str, str]]
    authors: list[Person]
    maintainers: list[Person]
    keywords: list[str]
    license: str


def project_facts(release: Release | None) -> ProjectFacts | None:
    """What the sidebar shows for ``release`` (the headline one on a package page)."""
    if release is None:
        return None
    license_text = release.license_expression or (release.license or "").strip()
    if len(license_text) > 200:
        license_text = license_text[:200] + "…"
    return ProjectFacts(
        links=safe_links(release),
        authors=people(release.author, release.author_email),
        maintainers=people(release.maintainer, release.maintainer_email),
        keywords=keywords(release),
        license=license_text,
    )
