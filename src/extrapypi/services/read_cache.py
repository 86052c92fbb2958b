"""What the full stack found out about a read, kept for ``fastpath.py`` to answer it again.

Read decisions are kept per access serial, file facts per index serial: each goes stale exactly
when what it was computed from may have changed.
"""

import threading
from dataclasses import dataclass, replace

DECISIONS_KEY = "extrapypi.read_decisions"
FILES_KEY = "extrapypi.file_facts"


class SerialMap:
    """Answers valid at one serial: another serial empties the map (it may also go back, with a
    restored database), and so does growing past ``max_entries`` (simple and bounded)."""

    def __init__(self, max_entries: int = 200_000):
        self.max_entries = max_entries
        self.serial = -1
        self._answers: dict = {}
        self._lock = threading.Lock()

    def get(self, serial: int, key):
        if serial != self.serial:
            return None
        return self._answers.get(key)

    def put(self, serial: int, key, value) -> None:
        with self._lock:
            if serial != self.serial:
                self._answers = {}
                self.serial = serial
            if len(self._answers) >= self.max_entries:
                self._answers = {}
            self._answers[key] = value


class ReadDecisions(SerialMap):
    """The security policy's answers for read permissions on read contexts, at one access serial.

    Keyed by (user id, role, context path, permission): at one access serial the principals of a
    user are fixed (role, teams) and so is every ACL on the way to a page or file (maintainers and
    teams move the access serial too), so the answer the traversal ACLs gave stands.
    """


class FileFactsCache(SerialMap):
    """``FileFacts`` by request path at one index serial (statuses and deletions move it)."""


@dataclass(frozen=True)
class FileFacts:
    """What a download needs once traversal found the file (and it was not quarantined)."""

    path: tuple[str, ...]  # the context path the decision was made on
    storage_key: str
    sha256: str
    disposition: str
    project: str = ""  # normalized name: the download metric's label
    filename: str = ""  # the download counter's key; "" for ``.metadata`` (not counted)
    view_label: str = "FileMetadataResource"

    def counted(self, project: str, filename: str) -> "FileFacts":
        """A whole-file download: counted, as ``services/metrics.count_download`` does."""
        return replace(self, project=project, filename=filename, view_label="FileResource")


def remember_file(request, facts: FileFacts) -> None:
    """The download views' file lookup point: the next request for this path skips the stack."""
    cache = request.registry.get(FILES_KEY)
    if cache is not None and not request.environ.get("QUERY_STRING"):
        cache.put(request.index_serial, request.path_info, facts)


def includeme(config) -> None:
    config.registry[DECISIONS_KEY] = ReadDecisions()
    config.registry[FILES_KEY] = FileFactsCache()
