"""Hostile distribution files against the upload API: names the server could not serve or that
inject headers, archives built to exhaust memory or CPU, files whose contents lie about what they
are, and storage failing after the commit. Each answers a 4xx with its reason (or, for storage
failing, a 5xx) and leaves nothing half-written behind.
"""

import gzip
import hashlib
import io
import logging
import os
import struct
import tarfile
import tracemalloc
import zipfile
from urllib.parse import quote, unquote

import pytest
import sqlalchemy as sa
from dists import metadata_text, sdist_named, wheel_bytes
from test_upload import assert_nothing_stored, assert_refused, form, post, rows

from extrapypi.models import File, FileTombstone, Release
from extrapypi.permissions import Role
from extrapypi.scripts.cli import main as extrapypi
from extrapypi.services import archives
from extrapypi.storage.disposition import attachment

MB = 1024 * 1024


@pytest.fixture
def dev(data):
    data.user("dev", Role.DEVELOPER)
    return "dev"


@pytest.fixture
def storage_root(base_settings):
    return base_settings["extrapypi.storage.path"]


def staging(root) -> list[str]:
    return os.listdir(os.path.join(root, ".staging"))


def multipart_body(fields: list[tuple[str, str]], filename: bytes, content: bytes):
    """A multipart body with the file part's filename sent as these bytes (quotes escaped)."""
    boundary = b"hostileboundary"
    filename = filename.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
    parts = []
    for name, value in fields:
        parts.append(
            b"--" + boundary + b'\r\nContent-Disposition: form-data; name="' + name.encode()
            + b'"\r\n\r\n' + value.encode() + b"\r\n"
        )  # fmt: skip
    parts.append(
        b"--" + boundary + b'\r\nContent-Disposition: form-data; name="content"; filename="'
        + filename + b'"\r\nContent-Type: application/octet-stream\r\n\r\n' + content + b"\r\n"
    )  # fmt: skip
    body = b"".join(parts) + b"--" + boundary + b"--\r\n"
    return body, "multipart/form-data; boundary=" + boundary.decode()


def raw_upload(testapp, headers, built, filename: bytes, status, **overrides):
    body, content_type = multipart_body(form(built, **overrides), filename, built[1])
    return testapp.request(
        "/legacy/",
        method="POST",
        body=body,
        headers=headers,
        content_type=content_type,
        status=status,
        expect_errors=True,
    )


# --- item 5: filenames the server cannot serve, header injection --------------------------------


def test_filename_with_quote_and_semicolon_is_refused(testapp, dev, auth, engine, storage_root):
    filename = "kappa-1.0-py3-none-any\"; filename*=utf8''setup.bat; x=\".whl"
    built = (filename, wheel_bytes("kappa", "1.0")[1], "")
    response = raw_upload(testapp, auth(dev), built, filename.encode(), 400, name="kappa")
    assert_refused(response, 400, "quotes, semicolons, spaces and other punctuation")
    assert_nothing_stored(engine, storage_root)


def test_kelvin_sign_filename_is_refused(testapp, dev, auth, engine, storage_root):
    filename = "\u212appa-1.0.tar.gz"  # KELVIN SIGN, not K: it lower-cases to "kappa"
    built = sdist_named(filename, "kappa", "1.0")
    response = raw_upload(
        testapp, auth(dev), built, filename.encode(), 400, name="kappa", version="1.0"
    )
    assert_refused(response, 400, "only ASCII letters and digits are allowed")
    assert_nothing_stored(engine, storage_root)


def test_kelvin_sign_project_name_is_refused(testapp, dev, auth, engine, storage_root):
    built = sdist_named("kappa-1.0.tar.gz", "kappa", "1.0")
    response = post(testapp, built, auth(dev), status=400, name="\u212appa", version="1.0")
    assert_refused(response, 400, "Invalid project name")
    assert_nothing_stored(engine, storage_root)


@pytest.mark.parametrize(
    ("name", "version", "build", "length"),
    [
        ("a" * 190, "1.0+" + "l" * 43, "", 255),  # "200 uploaded", its .metadata unwritable
        ("b" * 200, "1.0+" + "l" * 96, "1" + "x" * 107, 427),  # never stored, staging left
    ],
)
def test_filename_longer_than_storage_can_hold_is_refused(
    testapp, dev, auth, engine, storage_root, name, version, build, length
):
    tag = f"-{build}" if build else ""
    filename = f"{name}-{version}{tag}-py3-none-any.whl"
    assert len(filename.encode()) == length
    built = (filename, wheel_bytes(name, version)[1], "")
    response = post(testapp, built, auth(dev), status=400, name=name, version=version)
    assert_refused(response, 400, f"Invalid filename: {length} bytes long, at most 246")
    assert_nothing_stored(engine, storage_root)
    assert staging(storage_root) == []


def test_non_ascii_filename_of_427_bytes_is_refused(testapp, dev, auth, engine, storage_root):
    filename = "kappa-1.0-py3-none-" + "\u00e9" * 202 + ".whl"
    assert len(filename.encode()) == 427
    built = (filename, wheel_bytes("kappa", "1.0")[1], "")
    response = raw_upload(testapp, auth(dev), built, filename.encode(), 400, name="kappa")
    assert_refused(response, 400, "only ASCII letters and digits are allowed")
    assert_nothing_stored(engine, storage_root)
    assert staging(storage_root) == []


def test_longest_accepted_filename_is_served_with_its_metadata(testapp, dev, auth, data):
    name, version = "c" * 200, "1.0+" + "l" * 24
    built = wheel_bytes(name, version)
    assert len(built[0]) == 246
    post(testapp, built, auth(dev), status=200, name=name, version=version)
    data.user("reader")
    url = f"/packages/{name}/{version}/{built[0]}"
    assert testapp.get(url, headers=auth("reader")).body == built[1]
    assert testapp.get(url + ".metadata", headers=auth("reader")).body == built[2].encode()


@pytest.mark.parametrize(
    ("tags", "reason"),
    [("py3-none-any;x", "'any;x' is not a Python, ABI or platform tag")],
)
def test_wheel_tags_are_checked(testapp, dev, auth, engine, storage_root, tags, reason):
    filename = f"kappa-1.0-{tags}.whl"
    built = (filename, wheel_bytes("kappa", "1.0")[1], "")
    response = raw_upload(testapp, auth(dev), built, filename.encode(), 400, name="kappa")
    assert response.status_int == 400  # the allow-list answers first; the tag check backs it
    assert_nothing_stored(engine, storage_root)
    from extrapypi.services.filenames import InvalidFilename, check_filename_matches

    with pytest.raises(InvalidFilename, match="is not a Python, ABI or platform tag"):
        check_filename_matches("kappa-1.0-py3-none-an%y.whl", "bdist_wheel", "kappa", "1.0")


def assert_encoded_disposition(header: str, filename: str) -> None:
    """RFC 6266: ``attachment``, a plain quoted fallback, the exact name in ``filename*``
    (RFC 8187) — and nothing a parser could take as a third parameter."""
    assert header.isascii() and "\r" not in header and "\n" not in header
    disposition, fallback, extended = header.split("; ")
    assert disposition == "attachment"
    assert fallback.startswith('filename="') and fallback.endswith('"')
    assert all(c.isalnum() or c in "._+!-" for c in fallback[len('filename="') : -1]), fallback
    assert extended.startswith("filename*=UTF-8''")
    encoded = extended[len("filename*=UTF-8''") :]
    assert all(c.isalnum() or c in "%!#$&+-.^_`|~" for c in encoded), encoded
    assert unquote(encoded, errors="strict") == filename


@pytest.mark.parametrize(
    "filename",
    [
        "kappa-1.0-py3-none-any\"; filename*=utf8''setup.bat; x=\".whl",
        "\u212appa-1.0.tar.gz",
        "evil\r\nSet-Cookie: x=1.tar.gz",
    ],
)
def test_content_disposition_cannot_be_injected(filename):
    assert_encoded_disposition(attachment(filename), filename)
    assert attachment("demo-1.0.tar.gz") == 'attachment; filename="demo-1.0.tar.gz"'


def _store_legacy_row(app, filename: str, content: bytes):
    """A file recorded before today's filename rules (a row that predates them), for downloads."""
    import transaction

    from extrapypi.models import get_tm_session
    from extrapypi.services.packages import (
        ReleaseMetadata,
        add_file,
        create_package,
        create_release,
    )

    storage = app.registry["extrapypi.storage"]
    tm = transaction.TransactionManager(explicit=True)
    with tm:
        dbsession = get_tm_session(app.registry["dbsession_factory"], tm)
        package = create_package(dbsession, "kappa", None)
        release = create_release(dbsession, package, "1.0", ReleaseMetadata("2.1"), None)
        add_file(
            dbsession,
            storage,
            tm.get(),
            release,
            filename=filename,
            filetype="sdist",
            python_version="source",
            staged=storage.stage(io.BytesIO(content)),
            core_metadata=None,
            uploader=None,
        )


@pytest.mark.parametrize(
    "filename", ["\u212appa-1.0.tar.gz", "kappa-1.0\"; filename*=utf8''setup.bat; x=\".tar.gz"]
)
def test_old_rows_with_hostile_names_download_with_an_encoded_header(
    app, testapp, data, auth, filename
):
    data.user("reader")
    _store_legacy_row(app, filename, b"old bytes")
    response = testapp.get(f"/packages/kappa/1.0/{quote(filename)}", headers=auth("reader"))
    assert response.body == b"old bytes"
    assert_encoded_disposition(response.headers["Content-Disposition"], filename)


# --- storage failing after the commit ------------------------------------------------------------


def test_storage_failure_after_commit_is_a_5xx_and_check_repair_finishes_it(
    testapp, dev, auth, data, engine, storage_root, ini_file, caplog, capsys
):
    built = wheel_bytes("flaky", "1.0")
    blocker = os.path.join(storage_root, "flaky")
    with open(blocker, "w") as stub:  # a file where the package's directory must go
        stub.write("in the way")
    with caplog.at_level(logging.ERROR, logger="extrapypi.storage"):
        response = post(testapp, built, auth(dev), status=503)
    assert "Storage failed after the upload was recorded" in response.status
    assert "extrapypi check --repair" in response.text
    errors = [
        r for r in caplog.records if r.levelno == logging.ERROR and r.name.startswith("extrapypi")
    ]
    assert any("flaky/" + built[0] in r.getMessage() for r in errors), errors
    assert rows(engine, File) == 1  # recorded: the staged copies wait for the repair
    assert len(staging(storage_root)) == 2  # the wheel and its METADATA
    os.unlink(blocker)
    capsys.readouterr()
    assert extrapypi(["check", ini_file, "--repair", "--min-staged-age", "0"]) == 0
    out = capsys.readouterr().out
    assert "published the staged leftover" in out, out
    data.user("reader")
    url = f"/packages/flaky/1.0/{built[0]}"
    assert testapp.get(url, headers=auth("reader")).body == built[1]
    assert testapp.get(url + ".metadata", headers=auth("reader")).body == built[2].encode()
    assert staging(storage_root) == []
    assert extrapypi(["check", ini_file]) == 0


def test_identical_reupload_after_a_storage_failure_restores_the_file(
    testapp, dev, auth, data, engine, storage_root, ini_file, capsys
):
    built = wheel_bytes("flaky", "1.0")
    blocker = os.path.join(storage_root, "flaky")
    with open(blocker, "w") as stub:
        stub.write("in the way")
    post(testapp, built, auth(dev), status=503)
    os.unlink(blocker)
    response = post(testapp, built, auth(dev), status=200)
    assert "missing stored copy is restored" in response.text
    data.user("reader")
    url = f"/packages/flaky/1.0/{built[0]}"
    assert testapp.get(url, headers=auth("reader")).body == built[1]
    assert testapp.get(url + ".metadata", headers=auth("reader")).body == built[2].encode()
    assert rows(engine, File) == 1
    response = post(testapp, built, auth(dev), status=200)
    assert "nothing changed" in response.text
    # The failed publish's staged copies are now unused leftovers: check --repair drops them.
    assert len(staging(storage_root)) == 2
    assert extrapypi(["check", ini_file, "--repair", "--min-staged-age", "0"]) == 0
    assert "staged" in capsys.readouterr().out
    assert staging(storage_root) == []


# --- item 6: zip archives with absurd central directories ---------------------------------------


LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # APPNOTE 4.3.7
CENTRAL_HEADER = struct.Struct("<4s4B4HL2L5H2L")  # APPNOTE 4.3.12
ZIP64_END = struct.Struct("<4sQ2H2L4Q")  # APPNOTE 4.3.14
ZIP64_LOCATOR = struct.Struct("<4sLQL")  # APPNOTE 4.3.15
END = struct.Struct("<4s4H2LH")  # APPNOTE 4.3.16


def write_crafted_zip(path, entries: int, claimed: int | None = None, zip64: bool = False):
    """A zip of ``entries`` empty stored members written straight to disk, cheaply: a local
    header for the first few only (nothing reads the others before the refusal), its end record
    claiming ``claimed`` entries (in ZIP64 records when ``zip64``)."""
    claimed = entries if claimed is None else claimed
    local = min(entries, 1000)
    with open(path, "wb") as out:
        offsets = []
        for index in range(local):
            name = b"%07d" % index
            offsets.append(out.tell())
            out.write(LOCAL_HEADER.pack(b"PK\x03\x04", 10, *[0] * 7, len(name), 0) + name)
        start = out.tell()
        for index in range(entries):
            name = b"%07d" % index
            offset = offsets[index] if index < local else 0
            fields = (20, 3, 10, *[0] * 8, len(name), *[0] * 5, offset)
            out.write(CENTRAL_HEADER.pack(b"PK\x01\x02", *fields) + name)
        size = out.tell() - start
        if zip64:
            record = out.tell()
            out.write(
                ZIP64_END.pack(b"PK\x06\x06", 44, 45, 45, 0, 0, claimed, claimed, size, start)
            )
            out.write(ZIP64_LOCATOR.pack(b"PK\x06\x07", 0, record, 1))
            out.write(END.pack(b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0))
        else:
            short = min(claimed, 0xFFFF)
            out.write(END.pack(b"PK\x05\x06", 0, 0, short, short, size, start, 0))


def measured(function):
    """(result or raised exception, peak bytes allocated while ``function`` ran)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        try:
            result = function()
        except Exception as error:
            result = error
        return result, tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def upload_measured(testapp, headers, filename, content, fields):
    """Post ``content`` and return (response, peak bytes allocated while the server handled it)."""
    body, content_type = multipart_body(fields, filename.encode(), content)
    del content
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        response = testapp.request(
            "/legacy/",
            method="POST",
            body=body,
            headers=headers,
            content_type=content_type,
            expect_errors=True,
        )
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return response, peak


@pytest.mark.parametrize(
    ("entries", "claimed", "zip64", "reason"),
    [
        (150_000, None, True, "150000 entries, more than the 100000 allowed"),
        (3, 2_100_000, True, "2100000 entries, more than the 100000 allowed"),
    ],
    ids=["150k-entries", "zip64-claims-2.1M"],
)
def test_wheel_with_absurd_entry_count_is_refused_without_memory(
    testapp, dev, auth, engine, storage_root, tmp_path, entries, claimed, zip64, reason
):
    path = tmp_path / "crafted.whl"
    write_crafted_zip(path, entries, claimed, zip64)
    content = path.read_bytes()
    filename = "crafted-1.0-py3-none-any.whl"
    fields = form((filename, content, ""))
    response, peak = upload_measured(testapp, auth(dev), filename, content, fields)
    assert_refused(response, 400, reason)
    assert peak < 50 * MB, f"{peak / MB:.0f} MB allocated while refusing"
    assert_nothing_stored(engine, storage_root)
    assert staging(storage_root) == []


def test_zip_whose_end_record_understates_its_entries_is_counted_honestly(tmp_path):
    """zipfile ignores the recorded count and parses what is there: so does the guard."""
    path = tmp_path / "liar.whl"
    write_crafted_zip(path, 150_000, claimed=1)
    with open(path, "rb") as stream:
        refusal, peak = measured(lambda: archives.wheel_metadata("liar.whl", stream))
    assert isinstance(refusal, archives.InvalidArchive)
    assert "more than the 100000 entries allowed (its end record claims 1)" in str(refusal)
    assert peak < 50 * MB, f"{peak / MB:.0f} MB allocated while refusing"


def test_entry_count_guard_counts_real_wheels_exactly(tmp_path):
    built = wheel_bytes("exact", "1.0")
    assert archives.check_zip_entries(io.BytesIO(built[1]), "x") == 4
    path = tmp_path / "many.zip"
    write_crafted_zip(path, 1000)
    with open(path, "rb") as stream:
        assert archives.check_zip_entries(stream, "x") == 1000
        stream.seek(0)
        assert len(zipfile.ZipFile(stream).infolist()) == 1000
    path = tmp_path / "many64.zip"
    write_crafted_zip(path, 1000, zip64=True)
    with open(path, "rb") as stream:
        assert archives.check_zip_entries(stream, "x") == 1000


def test_zip_with_a_huge_central_directory_is_refused_before_reading_it(tmp_path):
    """zipfile reads the central directory whole: 33 MiB of it is refused first (a sparse file:
    nothing but the end record is ever written or read)."""
    path = tmp_path / "huge-directory.whl"
    size = 33 * MB
    with open(path, "wb") as out:
        out.seek(size)
        out.write(END.pack(b"PK\x05\x06", 0, 0, 1, 1, size, 0, 0))
    with open(path, "rb") as stream:
        refusal, peak = measured(lambda: archives.wheel_metadata("huge-directory.whl", stream))
    assert isinstance(refusal, archives.InvalidArchive), refusal
    assert "a central directory of 34603008 bytes, more than the 33554432 allowed" in str(refusal)
    assert peak < 1 * MB


# --- item 9: what an sdist holds ----------------------------------------------------------------


def test_sdist_holding_another_project_is_refused(testapp, dev, auth, engine, storage_root):
    built = sdist_named("alpha-1.2.tar.gz", "beta", "9.9")
    response = post(testapp, built, auth(dev), status=400, name="alpha", version="1.2")
    assert_refused(
        response, 400, "Invalid sdist 'alpha-1.2.tar.gz': its PKG-INFO says beta 9.9, the "
        "upload says alpha 1.2",
    )  # fmt: skip
    assert_nothing_stored(engine, storage_root)


@pytest.mark.parametrize(
    ("filename", "content", "reason"),
    [
        ("alpha-1.3.tar.gz", os.urandom(4096), "not a readable .tar.gz archive"),
        ("alpha-1.3.zip", os.urandom(4096), "not a valid zip file"),
        ("alpha-1.3.tar.gz", gzip.compress(os.urandom(4096)), "not a readable .tar.gz archive"),
    ],
)
def test_random_bytes_named_as_an_sdist_are_refused(
    testapp, dev, auth, engine, storage_root, filename, content, reason
):
    built = (filename, content, "")
    response = post(testapp, built, auth(dev), status=400, name="alpha", version="1.3")
    assert_refused(response, 400, reason)
    assert_nothing_stored(engine, storage_root)
    assert staging(storage_root) == []


def test_sdist_without_pkg_info_is_refused(testapp, dev, auth, engine, storage_root):
    built = sdist_named("alpha-1.0.tar.gz", "alpha", "1.0", top="x/y")  # PKG-INFO too deep
    response = post(testapp, built, auth(dev), status=400)
    assert_refused(response, 400, "no usable top-level PKG-INFO")
    assert_nothing_stored(engine, storage_root)


def test_old_sdists_with_any_top_directory_and_zip_format_upload(testapp, dev, auth, engine):
    for built, name, version in [
        (sdist_named("Web.Kit-0.9-dev.tar.gz", "Web.Kit", "0.9-dev", top="WebKit"), "Web.Kit",
         "0.9-dev"),
        (sdist_named("zope.event-3.4.0.zip", "zope.event", "3.4.0"), "zope.event", "3.4.0"),
    ]:  # fmt: skip
        post(testapp, built, auth(dev), status=200, name=name, version=version,
             metadata_version="1.0")  # fmt: skip
    assert rows(engine, File) == 2


def test_one_sdist_per_release_as_pypi(testapp, dev, auth, engine, storage_root):
    post(testapp, sdist_named("alpha-1.0.tar.gz", "alpha", "1.0"), auth(dev), status=200)
    zipped = sdist_named("alpha-1.0.zip", "alpha", "1.0")
    response = post(testapp, zipped, auth(dev), status=400, name="alpha", version="1.0")
    assert_refused(
        response, 400, "Only one sdist may be uploaded per release: alpha 1.0 already has "
        "'alpha-1.0.tar.gz'",
    )  # fmt: skip
    response = post(
        testapp, sdist_named("Alpha-1.0.0.tar.gz", "alpha", "1.0.0"), auth(dev), status=400
    )
    assert_refused(response, 400, "'alpha-1.0.tar.gz' is the same file under another spelling")
    post(testapp, wheel_bytes("alpha", "1.0"), auth(dev), status=200)  # wheels still join
    zipped = sdist_named("alpha-1.1.zip", "alpha", "1.1")
    post(testapp, zipped, auth(dev), status=200, name="alpha", version="1.1")
    with engine.connect() as connection:
        names = sorted(connection.execute(sa.select(File.filename)).scalars())
    assert names == ["alpha-1.0-py3-none-any.whl", "alpha-1.0.tar.gz", "alpha-1.1.zip"]


@pytest.mark.parametrize(
    ("buried", "built", "version"),
    [
        ("alpha-1.0.tar.gz", sdist_named("Alpha-1.0.tar.gz", "alpha", "1.0"), "1.0"),
        ("alpha-1.0.tar.gz", sdist_named("ALPHA-1.0.0.tar.gz", "alpha", "1.0.0"), "1.0.0"),
        ("Alpha-1.0-py3-none-any.whl", wheel_bytes("alpha", "1.0.0"), "1.0.0"),
    ],
)
def test_deleted_filename_is_never_reusable_in_another_spelling(
    testapp, dev, auth, engine, storage_root, buried, built, version
):
    with engine.begin() as connection:
        connection.execute(sa.insert(FileTombstone).values(filename=buried))
    response = post(testapp, built, auth(dev), status=400, name="alpha", version=version)
    assert_refused(response, 400, f"was used by a deleted file (deleted as {buried!r})")
    assert_nothing_stored(engine, storage_root)


def test_a_deleted_file_of_a_similar_project_does_not_block(testapp, dev, auth, engine):
    with engine.begin() as connection:
        connection.execute(sa.insert(FileTombstone).values(filename="alphabet-1.0.tar.gz"))
        connection.execute(sa.insert(FileTombstone).values(filename="alpha-1.0.zip"))
    post(testapp, sdist_named("alpha-1.0.tar.gz", "alpha", "1.0"), auth(dev), status=200)
    assert rows(engine, File) == 1


def _advertised(testapp, auth, name: str) -> list:
    page = testapp.get(
        f"/simple/{name}/",
        headers={**auth("reader"), "Accept": "application/vnd.pypi.simple.v1+json"},
    )
    return [(f["filename"], f.get("requires-python")) for f in page.json["files"]]


def test_requires_python_is_the_files_own(testapp, dev, auth, data, engine, storage_root):
    data.user("reader")
    wheel = wheel_bytes("rp", "1.0", requires_python=">=3.99")
    response = post(testapp, wheel, auth(dev), status=400, requires_python=">=3.6")
    assert_refused(
        response, 400, "Requires-Python mismatch: the upload says '>=3.6', the wheel's own "
        "METADATA says '>=3.99'",
    )  # fmt: skip
    assert_nothing_stored(engine, storage_root)
    sdist = sdist_named("rp-1.0.tar.gz", "rp", "1.0")
    response = post(testapp, sdist, auth(dev), status=400, requires_python=">=3.6")
    assert_refused(response, 400, "the sdist's own PKG-INFO has none")
    # Not declared in the form (old tools): the file's own value is advertised.
    post(testapp, wheel, auth(dev), status=200)
    # Declared in another spelling of the same specifier set: accepted.
    sdist = sdist_named("rp-1.0.tar.gz", "rp", "1.0", requires_python="<4, >=3.8")
    post(testapp, sdist, auth(dev), status=200, requires_python=">=3.8,<4")
    assert sorted(_advertised(testapp, auth, "rp")) == [
        ("rp-1.0-py3-none-any.whl", ">=3.99"),
        ("rp-1.0.tar.gz", "<4, >=3.8"),
    ]
    with engine.connect() as connection:
        assert connection.execute(sa.select(Release.requires_python)).scalar() == ">=3.99"


# --- item 9: tar.gz sdists built to exhaust the server ------------------------------------------


def _tar_gz(*blocks, tail: bytes = b"") -> bytes:
    """Gzip the blocks (bytes, or iterables of chunks) one by one, never joined in memory."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, compresslevel=1) as out:
        for block in (*blocks, tail):
            for chunk in [block] if isinstance(block, bytes) else block:
                out.write(chunk)
    return buffer.getvalue()


def _header(name: str, size: int, kind=tarfile.REGTYPE, fmt=tarfile.GNU_FORMAT) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.type = size, kind
    return info.tobuf(format=fmt)


def _member(name: str, data: bytes) -> bytes:
    padding = (-len(data)) % tarfile.BLOCKSIZE
    return _header(name, len(data)) + data + b"\0" * padding


PKG_INFO = metadata_text("bomb", "1.0").encode()


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        # A member claiming 3 GiB before PKG-INFO: refused before decompressing anything.
        (
            lambda: _tar_gz(_header("bomb-1.0/huge", 3 * 1024**3), tail=b"\0" * 4096),
            "unpacks to more than",
        ),
        # Real zeros at a ratio of ~1000: the budget is 100 times the upload (64 MiB at least).
        (
            lambda: _tar_gz(_header("bomb-1.0/zeros", 80 * MB), (b"\0" * MB for _ in range(80))),
            "unpacks to more than 67108864 bytes",
        ),
        # A GNU long name of 1 GiB: tarfile would read it into memory whole.
        (
            lambda: _tar_gz(
                _header("././@LongLink", 1024**3, tarfile.GNUTYPE_LONGNAME), tail=b"\0" * 4096
            ),
            "a tar header or member claims an absurd size",
        ),
        # A pax header of 1 GiB likewise.
        (
            lambda: _tar_gz(
                _header("pax", 1024**3, tarfile.XHDTYPE, tarfile.USTAR_FORMAT), tail=b"\0" * 4096
            ),
            "a tar header or member claims an absurd size",
        ),
        # A PKG-INFO of 9 MiB.
        (
            lambda: _tar_gz(_member("bomb-1.0/PKG-INFO", PKG_INFO + b"x" * (9 * MB))),
            "PKG-INFO is too large",
        ),
    ],
    ids=["declared-3GiB", "zeros-80MiB", "gnu-longname-1GiB", "pax-1GiB", "pkg-info-9MiB"],
)
def test_tar_bombs_are_refused_cheaply(testapp, dev, auth, engine, storage_root, build, reason):
    content = build()
    filename = "bomb-1.0.tar.gz"
    fields = form((filename, content, ""))
    response, peak = upload_measured(testapp, auth(dev), filename, content, fields)
    assert_refused(response, 400, reason)
    assert peak < 50 * MB, f"{peak / MB:.0f} MB allocated while refusing"
    assert_nothing_stored(engine, storage_root)


def _empty_members(prefix: str, count: int):
    """``count`` headers of empty files, patched from one template (tobuf() is slow): the same
    name length each time, so the checksum only moves by the name's bytes."""
    first = f"{prefix}{0:06d}".encode()
    template = bytearray(_header(first.decode(), 0))
    template[148:156] = b" " * 8
    base = sum(template) - sum(first)
    for index in range(count):
        name = f"{prefix}{index:06d}".encode()
        block = bytearray(template)
        block[: len(name)] = name
        block[148:156] = b"%06o\0 " % (base + sum(name))
        yield bytes(block)


RSS_PROBE = """
import io, resource, sys
from extrapypi.services import archives
content = open(sys.argv[1], "rb").read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    archives.sdist_metadata("bomb-1.0.tar.gz", io.BytesIO(content))
    print("accepted")
except archives.InvalidArchive as error:
    print(error)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


def test_sdist_with_too_many_members_is_refused_in_flat_memory(tmp_path):
    """100,001 members (tarfile would keep a TarInfo for each): refused, RSS flat. Measured in a
    process of its own: tracemalloc would multiply the walk's time, and this one's peak RSS is
    long past."""
    import subprocess
    import sys

    path = tmp_path / "bomb-1.0.tar.gz"
    path.write_bytes(
        _tar_gz(_empty_members("bomb-1.0/", 100_001), _member("bomb-1.0/PKG-INFO", PKG_INFO))
    )
    assert path.stat().st_size < 8 * MB
    probe = subprocess.run(
        [sys.executable, "-c", RSS_PROBE, str(path)], capture_output=True, text=True, timeout=300
    )
    assert probe.returncode == 0, probe.stderr
    reason, growth_kib = probe.stdout.strip().splitlines()
    assert "more than the 100000 entries allowed" in reason
    assert int(growth_kib) < 50 * 1024, f"RSS grew by {int(growth_kib) // 1024} MB"


def test_pkg_info_after_many_members_is_found(testapp, dev, auth, engine):
    members = [_member(f"late-1.0/f{i:05d}", b"x") for i in range(2000)]
    content = _tar_gz(*members, _member("late-1.0/PKG-INFO", metadata_text("late", "1.0").encode()))
    post(testapp, ("late-1.0.tar.gz", content, ""), auth(dev), status=200)
    with engine.connect() as connection:
        stored = connection.execute(sa.select(File.sha256)).scalar()
    assert stored == hashlib.sha256(content).hexdigest()


def test_two_sdists_racing_into_one_release_one_wins(live_server, data, engine, storage_root):
    import threading

    import requests

    data.user("racer", Role.DEVELOPER)
    for attempt in range(3):
        version = f"1.{attempt}"
        builds = [
            sdist_named(f"racing-{version}.tar.gz", "racing", version),
            sdist_named(f"racing-{version}.zip", "racing", version),
        ]
        barrier = threading.Barrier(len(builds))
        answers = []

        def send(built, version=version, barrier=barrier, answers=answers):
            barrier.wait()
            answers.append(
                requests.post(
                    live_server.url + "/legacy/",
                    data=form(built, name="racing", version=version),
                    files={"content": (built[0], built[1])},
                    auth=("racer", "correct horse"),
                    timeout=60,
                )
            )

        threads = [threading.Thread(target=send, args=(built,)) for built in builds]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200, 400], [(a.status_code, a.reason) for a in answers]
        loser = next(a for a in answers if a.status_code == 400)
        assert "Only one sdist may be uploaded per release" in loser.reason
    with engine.connect() as connection:
        per_release = connection.execute(
            sa.select(File.release_id, sa.func.count()).group_by(File.release_id)
        ).all()
    assert sorted(count for _, count in per_release) == [1, 1, 1]
    assert staging(storage_root) == []


def test_s3_prefix_leaves_room_for_every_key():
    """prefix + project name (200) + "/" + filename with ".metadata" (255) fit S3's 1024 bytes."""
    from extrapypi.storage.s3 import S3Storage

    with pytest.raises(ValueError, match="extrapypi.storage.prefix is too long"):
        S3Storage("bucket", "p" * 512, client=object())
    storage = S3Storage("bucket", "p" * 511, client=object())
    key = storage.object_key("n" * 200 + "/" + "f" * 246 + ".metadata")
    assert len(key.encode()) <= 1024
