"""Client configuration for this index (pip, uv, poetry, twine, netrc, keyring), as text to copy.

One place builds every snippet, so the setup page, the package pages' install commands and the
tests that run the snippets with real pip and uv agree. The advice is the one docs/installing.md
gives: this index as *the* index (or first, pinned, for uv), credentials outside the URL.
"""

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

INDEX_NAME = "extrapypi"
USERNAME = "<username>"
PASSWORD = "<password>"
#: Where a CI job keeps an API token (a secret of the CI, never in the repository).
TOKEN_VARIABLE = "EXTRAPYPI_TOKEN"


@dataclass(frozen=True)
class Snippet:
    key: str
    title: str
    where: str
    text: str


@dataclass(frozen=True)
class ClientSetup:
    index_url: str  # ends with /simple/
    upload_url: str  # ends with /legacy/
    host: str

    @property
    def env_name(self) -> str:
        """uv's environment name for the index: upper-cased, other characters as ``_``."""
        return re.sub(r"[^A-Z0-9]", "_", INDEX_NAME.upper())


def client_setup(index_url: str) -> ClientSetup:
    """``index_url`` is the simple index's URL (``https://host/prefix/simple/``)."""
    simple = index_url.rstrip("/") + "/"
    base = simple[: -len("simple/")] if simple.endswith("/simple/") else simple
    host = urlsplit(simple).hostname or ""
    return ClientSetup(index_url=simple, upload_url=base + "legacy/", host=host)


def install_command(setup: ClientSetup, requirement: str) -> str:
    """The one-line install a package page shows: this index as the only index."""
    return f"pip install --index-url {setup.index_url} {requirement}"


def snippets(setup: ClientSetup, proxies_upstream: bool = False) -> list[Snippet]:
    """Every client's configuration, safest first. When this index proxies an upstream (PyPI),
    the single URL serves public packages too: the split setups (private names from here, the
    rest from PyPI) are left out, and the uv index says it is the only one needed."""
    every = _snippets(setup)
    if not proxies_upstream:
        return every
    kept = [s for s in every if s.key != "uv-explicit"]
    return [
        Snippet(s.key, "uv: this index only (it serves PyPI's packages too)", s.where, s.text)
        if s.key == "uv-index"
        else s
        for s in kept
    ]


def _snippets(setup: ClientSetup) -> list[Snippet]:
    url, env = setup.index_url, setup.env_name
    return [
        Snippet(
            "pip-conf",
            "pip: pip.conf",
            "~/.config/pip/pip.conf (Linux), %APPDATA%\\pip\\pip.ini (Windows)",
            f"[global]\nindex-url = {url}\n",
        ),
        Snippet(
            "pip-command",
            "pip: one command",
            "a shell",
            f"pip install --index-url {url} <package>",
        ),
        Snippet(
            "netrc",
            "Credentials: netrc (pip, uv, twine and poetry read it)",
            "~/.netrc, then chmod 600 ~/.netrc",
            f"machine {setup.host}\nlogin {USERNAME}\npassword {PASSWORD}\n",
        ),
        Snippet(
            "keyring",
            "Credentials: keyring (instead of netrc)",
            "a shell",
            f"pip install keyring\nkeyring set {url} {USERNAME}\n"
            f"pip install --keyring-provider import --index-url "
            f"{url.replace('://', '://' + USERNAME + '@', 1)} <package>",
        ),
        Snippet(
            "uv-index",
            "uv: this index instead of PyPI",
            "pyproject.toml of your project",
            f'[[tool.uv.index]]\nname = "{INDEX_NAME}"\nurl = "{url}"\ndefault = true\n',
        ),
        Snippet(
            "uv-explicit",
            "uv: private packages only from here, the rest from PyPI",
            "pyproject.toml of your project",
            f'[[tool.uv.index]]\nname = "{INDEX_NAME}"\nurl = "{url}"\nexplicit = true\n\n'
            f'[tool.uv.sources]\n<package> = {{ index = "{INDEX_NAME}" }}\n',
        ),
        Snippet(
            "uv-credentials",
            "uv: credentials",
            "the environment (CI secrets)",
            f"export UV_INDEX_{env}_USERNAME={USERNAME}\n"
            f"export UV_INDEX_{env}_PASSWORD={PASSWORD}\n",
        ),
        Snippet(
            "poetry",
            "poetry",
            "your project's directory",
            f"poetry source add --priority=primary {INDEX_NAME} {url}\n"
            f"poetry config http-basic.{INDEX_NAME} {USERNAME} {PASSWORD}\n",
        ),
        Snippet(
            "pypirc",
            "twine: ~/.pypirc (uploading)",
            "~/.pypirc, then twine upload -r extrapypi dist/*",
            f"[distutils]\nindex-servers =\n    {INDEX_NAME}\n\n[{INDEX_NAME}]\n"
            f"repository = {setup.upload_url}\nusername = {USERNAME}\n",
        ),
        Snippet(
            "ci-token",
            "CI: upload with an API token (not a password)",
            "a CI job, the token kept as the CI secret " + TOKEN_VARIABLE,
            f'uv publish --publish-url {setup.upload_url} --token "${TOKEN_VARIABLE}"\n'
            f'# or: TWINE_USERNAME=__token__ TWINE_PASSWORD="${TOKEN_VARIABLE}" \\\n'
            f"#     twine upload --repository-url {setup.upload_url} dist/*\n",
        ),
        Snippet(
            "ci-trusted",
            "CI: trusted publishing (no stored secret)",
            "a GitHub Actions job with permissions: id-token: write",
            f"uv publish --trusted-publishing always --publish-url {setup.upload_url}\n",
        ),
    ]
