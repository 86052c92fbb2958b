"""Small, spec-correct distributions built in the test, for uploads, indexes and real clients."""

import base64
import gzip
import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

from packaging.utils import canonicalize_name


def dist_name(name: str) -> str:
    """The name as it appears in wheel and sdist filenames (PEP 427/625)."""
    return canonicalize_name(name).replace("-", "_")


def metadata_text(
    name: str,
    version: str,
    *,
    summary: str = "",
    requires_dist: tuple[str, ...] = (),
    requires_python: str | None = None,
    metadata_version: str = "2.1",
    description: str = "",
    description_content_type: str | None = None,
    extra_headers: tuple[tuple[str, str], ...] = (),
) -> str:
    lines = [f"Metadata-Version: {metadata_version}", f"Name: {name}", f"Version: {version}"]
    if summary:
        lines.append(f"Summary: {summary}")
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    lines += [f"Requires-Dist: {r}" for r in requires_dist]
    if description_content_type:
        lines.append(f"Description-Content-Type: {description_content_type}")
    lines += [f"{k}: {v}" for k, v in extra_headers]
    text = "\n".join(lines) + "\n"
    if description:
        text += "\n" + description + "\n"
    return text


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def wheel_bytes(
    name: str,
    version: str,
    *,
    module: str | None = None,
    tag: str = "py3-none-any",
    metadata: str | None = None,
    **metadata_args,
) -> tuple[str, bytes, str]:
    """(filename, bytes, METADATA text) of a pure-Python wheel that pip will install."""
    dist = dist_name(name)
    module = module or dist
    info = f"{dist}-{version}.dist-info"
    metadata = metadata if metadata is not None else metadata_text(name, version, **metadata_args)
    files = {
        f"{module}/__init__.py": f"__version__ = {version!r}\n".encode(),
        f"{info}/METADATA": metadata.encode(),
        f"{info}/WHEEL": (
            f"Wheel-Version: 1.0\nGenerator: extrapypi-tests\nRoot-Is-Purelib: true\nTag: {tag}\n"
        ).encode(),
    }
    record = [_record_line(path, data) for path, data in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in files.items():
            member = zipfile.ZipInfo(path, date_time=(2024, 1, 1, 0, 0, 0))
            member.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(member, data)
    return f"{dist}-{version}-{tag}.whl", buffer.getvalue(), metadata


def sdist_bytes(
    name: str, version: str, *, metadata: str | None = None, **metadata_args
) -> tuple[str, bytes, str]:
    """(filename, bytes, PKG-INFO text) of a setuptools sdist."""
    dist = dist_name(name)
    root = f"{dist}-{version}"
    pkg_info = metadata if metadata is not None else metadata_text(name, version, **metadata_args)
    files = {
        f"{root}/PKG-INFO": pkg_info.encode(),
        f"{root}/pyproject.toml": (
            '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
            f'[project]\nname = "{name}"\nversion = "{version}"\n'
        ).encode(),
        f"{root}/{dist}/__init__.py": f"__version__ = {version!r}\n".encode(),
    }
    buffer = io.BytesIO()
    # mtime=0 in the gzip header too: the same arguments always give the same bytes.
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w") as archive,
    ):
        for path, data in files.items():
            member = tarfile.TarInfo(path)
            member.size = len(data)
            member.mtime = 1_700_000_000
            archive.addfile(member, io.BytesIO(data))
    return f"{root}.tar.gz", buffer.getvalue(), pkg_info


def write(directory: Path, built: tuple[str, bytes, str]) -> Path:
    path = Path(directory) / built[0]
    path.write_bytes(built[1])
    return path


def sdist_named(
    filename: str,
    name: str,
    version: str,
    *,
    top: str | None = None,
    metadata: str | None = None,
    padding: int = 0,
    **metadata_args,
) -> tuple[str, bytes, str]:
    """(filename, bytes, PKG-INFO) of an sdist under any filename, as old tools wrote them:
    ``.tar.gz`` or ``.zip`` by the extension, PKG-INFO under ``top`` (the stem by default),
    ``padding`` incompressible bytes in a data file to reach a size."""
    import os

    stem = filename.removesuffix(".tar.gz").removesuffix(".zip")
    top = top or stem
    pkg_info = metadata if metadata is not None else metadata_text(name, version, **metadata_args)
    files = {
        f"{top}/setup.py": b"from setuptools import setup\nsetup()\n",
        f"{top}/PKG-INFO": pkg_info.encode(),
    }
    if padding:
        files[f"{top}/data.bin"] = os.urandom(padding)
    buffer = io.BytesIO()
    if filename.endswith(".zip"):
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path, data in files.items():
                archive.writestr(zipfile.ZipInfo(path, date_time=(2024, 1, 1, 0, 0, 0)), data)
    else:
        with (
            gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as compressed,
            tarfile.open(fileobj=compressed, mode="w") as archive,
        ):
            for path, data in files.items():
                member = tarfile.TarInfo(path)
                member.size = len(data)
                archive.addfile(member, io.BytesIO(data))
    return filename, buffer.getvalue(), pkg_info
