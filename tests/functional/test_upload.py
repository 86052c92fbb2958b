"""The legacy upload API through WebTest: every rule answers with its reason and stores nothing."""

import hashlib
import io
import os
import threading
import zipfile

import pytest
import sqlalchemy as sa
import webtest
from dists import metadata_text, sdist_bytes, sdist_named, wheel_bytes

from extrapypi.models import File, FileTombstone, JournalEntry, Package, Release
from extrapypi.permissions import Role


def form(built, filetype=None, **overrides):
    """The fields twine sends for a built (filename, bytes, metadata) triple."""
    filename, content, _ = built
    filetype = filetype or ("bdist_wheel" if filename.endswith(".whl") else "sdist")
    name, version = overrides.pop("name", None), overrides.pop("version", None)
    if name is None or version is None:  # "" stays empty: a missing field
        stem = filename[: -len(".whl")] if filename.endswith(".whl") else filename.split(".tar")[0]
        parts = stem.split("-")
        name = parts[0] if name is None else name
        version = parts[1] if version is None else version
    fields = {
        ":action": "file_upload",
        "protocol_version": "1",
        "metadata_version": "2.1",
        "name": name,
        "version": version,
        "filetype": filetype,
        "pyversion": "py3" if filetype == "bdist_wheel" else "source",
        "sha256_digest": hashlib.sha256(content).hexdigest(),
        "blake2_256_digest": hashlib.blake2b(content, digest_size=32).hexdigest(),
        "summary": "A test package",
    }
    fields.update(overrides)
    return [(k, v) for k, v in fields.items() if v is not None]


def post(testapp, built, headers, path="/legacy/", status=None, content=None, **overrides):
    filename, data, _ = built
    params = overrides.pop("params", None) or form(built, **overrides)
    return testapp.post(
        path,
        params=params,
        upload_files=[("content", filename, data if content is None else content)],
        headers=headers,
        status=status,
        expect_errors=status is not None and status >= 400,
    )


@pytest.fixture
def storage_root(base_settings):
    return base_settings["extrapypi.storage.path"]


@pytest.fixture
def dev(data):
    data.user("dev", Role.DEVELOPER)
    return "dev"


def stored_files(root):
    found = []
    for directory, _dirs, files in os.walk(root):
        found += [os.path.relpath(os.path.join(directory, f), root) for f in files]
    return sorted(found)


def rows(engine, model):
    with engine.connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(model)).scalar()


def assert_nothing_stored(engine, root):
    """No row, no published file, no staged leftover (``stored_files`` walks ``.staging`` too)."""
    assert rows(engine, File) == 0
    assert rows(engine, Release) == 0
    assert rows(engine, Package) == 0
    assert stored_files(root) == []


def assert_refused(response, status, reason_part):
    assert response.status_int == status
    assert reason_part in response.status, response.status
    assert reason_part in response.text


# --- the happy paths ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/legacy/", "/simple/", "/"])
def test_developer_uploads_wheel_and_becomes_maintainer(
    testapp, dev, auth, engine, storage_root, path
):
    built = wheel_bytes("Hello.World", "1.0", summary="Hi", requires_dist=("six>=1",))
    response = post(
        testapp,
        built,
        auth(dev),
        path=path,
        status=200,
        requires_dist="six>=1",
        classifiers="Topic :: Utilities",
    )
    assert "uploaded" in response.text
    key = f"hello-world/{built[0]}"
    assert stored_files(storage_root) == [key, key + ".metadata"]
    with open(os.path.join(storage_root, key), "rb") as stored:
        assert stored.read() == built[1]
    with open(os.path.join(storage_root, key + ".metadata")) as stored:
        assert stored.read() == built[2]
    with engine.connect() as connection:
        file = connection.execute(sa.select(File)).one()
        assert file.sha256 == hashlib.sha256(built[1]).hexdigest()
        assert file.metadata_sha256 == hashlib.sha256(built[2].encode()).hexdigest()
        assert file.filetype == "bdist_wheel" and file.python_version == "py3"
        release = connection.execute(sa.select(Release)).one()
        assert (release.version, release.summary, release.requires_dist) == (
            "1.0",
            "A test package",
            ["six>=1"],
        )
        assert release.classifiers == ["Topic :: Utilities"]
        package = connection.execute(sa.select(Package)).one()
        assert package.normalized_name == "hello-world"
        maintainers = connection.execute(sa.text("select count(*) from package_maintainers"))
        assert maintainers.scalar() == 1
        actions = [
            e.action
            for e in connection.execute(sa.select(JournalEntry).order_by(JournalEntry.id)).all()
        ]
        assert actions[-2:] == ["create package", "add file"]
    assert os.listdir(os.path.join(storage_root, ".staging")) == []


def test_sdist_upload_has_no_pep658_metadata(testapp, dev, auth, storage_root):
    built = sdist_bytes("plain", "2.0")
    post(testapp, built, auth(dev), status=200)
    assert stored_files(storage_root) == [f"plain/{built[0]}"]


@pytest.mark.parametrize(
    "metadata_version", ["1.0", "1.1", "1.2", "2.0", "2.1", "2.2", "2.3", "2.4"]
)
def test_every_metadata_version_is_accepted(testapp, dev, auth, metadata_version):
    built = wheel_bytes("mv", "1.0", metadata_version=metadata_version)
    post(testapp, built, auth(dev), status=200, metadata_version=metadata_version)


@pytest.mark.parametrize(
    "filename",
    [
        "Django-1.0.tar.gz",
        "zope.interface-3.6.1.tar.gz",
        "foo-bar-1.0-dev.tar.gz",
        "Foo_Bar-1.0-2.zip",
        "FOO-BAR-1.0.tar.gz",
    ],
)
def test_legacy_sdist_names_are_accepted(testapp, dev, auth, engine, filename):
    stem = filename.rsplit(".tar.gz", 1)[0].rsplit(".zip", 1)[0]
    name, version = {
        "Django-1.0": ("Django", "1.0"),
        "zope.interface-3.6.1": ("zope.interface", "3.6.1"),
        "foo-bar-1.0-dev": ("foo-bar", "1.0-dev"),
        "Foo_Bar-1.0-2": ("Foo_Bar", "1.0-2"),
        "FOO-BAR-1.0": ("foo-bar", "1.0"),
    }[stem]
    built = sdist_named(filename, name, version, metadata_version="1.0")
    post(testapp, built, auth(dev), status=200, name=name, version=version)
    with engine.connect() as connection:
        assert connection.execute(sa.select(File.filename)).scalar() == filename


def test_identical_reupload_is_a_no_op(testapp, dev, auth, engine, storage_root):
    built = wheel_bytes("again", "1.0")
    post(testapp, built, auth(dev), status=200)
    before = stored_files(storage_root)
    response = post(testapp, built, auth(dev), status=200)
    assert "nothing changed" in response.text
    assert stored_files(storage_root) == before
    assert rows(engine, File) == 1
    assert rows(engine, JournalEntry) == 3  # create user, create package, add file
    assert os.listdir(os.path.join(storage_root, ".staging")) == []


def test_maintainer_uploads_to_maintained_package(testapp, data, auth, engine):
    data.user("maint", Role.MAINTAINER)
    data.package("mine", maintainers=("maint",))
    post(testapp, sdist_bytes("mine", "1.0"), auth("maint"), status=200)
    assert rows(engine, File) == 1


def test_second_file_joins_the_release(testapp, dev, auth, engine):
    post(testapp, wheel_bytes("pair", "1.0"), auth(dev), status=200)
    post(testapp, sdist_bytes("pair", "1.0"), auth(dev), status=200, version="1.0.0")
    assert (rows(engine, Release), rows(engine, File)) == (1, 2)


# --- authentication and permissions ------------------------------------------------------------


def test_anonymous_upload_gets_basic_challenge(testapp, engine, storage_root):
    response = post(testapp, wheel_bytes("anon", "1.0"), {}, status=401)
    assert response.headers["WWW-Authenticate"] == 'Basic realm="extrapypi"'
    assert_nothing_stored(engine, storage_root)


def test_wrong_password_gets_challenge(testapp, dev, auth, engine, storage_root):
    response = post(testapp, wheel_bytes("anon", "1.0"), auth(dev, "wrong"), status=401)
    assert response.headers["WWW-Authenticate"]
    assert_nothing_stored(engine, storage_root)


def test_session_cookie_cannot_upload(testapp, dev, engine, storage_root):
    from test_security import login

    assert login(testapp, dev).status_int in (302, 303)
    response = post(testapp, wheel_bytes("viasession", "1.0"), {}, status=401)
    assert response.headers["WWW-Authenticate"]
    assert "HTTP Basic" in response.status
    assert_nothing_stored(engine, storage_root)


def test_installer_cannot_upload(testapp, data, auth, engine, storage_root):
    data.user("inst", Role.INSTALLER)
    response = post(testapp, wheel_bytes("newpkg", "1.0"), auth("inst"), status=403)
    assert_refused(response, 403, "user 'inst' (installer) may not create new packages")
    assert_nothing_stored(engine, storage_root)


def test_maintainer_cannot_create_package(testapp, data, auth, engine, storage_root):
    data.user("maint", Role.MAINTAINER)
    response = post(testapp, wheel_bytes("newpkg", "1.0"), auth("maint"), status=403)
    assert_refused(response, 403, "may not create new packages")
    assert_nothing_stored(engine, storage_root)


def test_maintainer_cannot_upload_to_package_of_others(testapp, data, auth, engine, storage_root):
    data.user("maint", Role.MAINTAINER)
    data.user("other", Role.DEVELOPER)
    data.package("theirs", maintainers=("other",))
    response = post(testapp, wheel_bytes("theirs", "1.0"), auth("maint"), status=403)
    assert_refused(response, 403, "user 'maint' (maintainer) may not upload to 'theirs'")
    assert rows(engine, File) == 0
    assert stored_files(storage_root) == []


def test_developer_cannot_upload_to_package_of_others(testapp, data, auth, dev, engine):
    data.user("other", Role.DEVELOPER)
    data.package("theirs", maintainers=("other",))
    response = post(testapp, wheel_bytes("Theirs", "1.0"), auth(dev), status=403)
    assert_refused(response, 403, "may not upload to 'theirs': not one of its maintainers")
    assert rows(engine, File) == 0


def test_admin_uploads_anywhere(testapp, data, auth, engine):
    data.user("root", Role.ADMIN)
    data.package("theirs")
    post(testapp, wheel_bytes("theirs", "1.0"), auth("root"), status=200)
    assert rows(engine, File) == 1


# --- actions -----------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["submit", "doc_upload"])
def test_retired_actions_are_gone(testapp, dev, auth, action, engine, storage_root):
    built = wheel_bytes("x", "1.0")
    response = post(testapp, built, auth(dev), status=410, **{":action": action})
    assert_refused(response, 410, "Gone")
    assert_nothing_stored(engine, storage_root)


@pytest.mark.parametrize("action", ["frobnicate", None])
def test_unknown_or_missing_action_is_400(testapp, dev, auth, action, engine, storage_root):
    response = post(testapp, wheel_bytes("x", "1.0"), auth(dev), status=400, **{":action": action})
    assert_refused(response, 400, "Unknown or missing :action")
    assert_nothing_stored(engine, storage_root)


def test_missing_content_is_400(testapp, dev, auth, engine, storage_root):
    response = testapp.post(
        "/legacy/", params=form(wheel_bytes("x", "1.0")), headers=auth(dev), status=400
    )
    assert_refused(response, 400, "Missing file")
    assert_nothing_stored(engine, storage_root)


# --- validation rules --------------------------------------------------------------------------

WHEEL = wheel_bytes("good", "1.0")
SDIST = sdist_bytes("good", "1.0")


@pytest.mark.parametrize(
    ("built", "overrides", "reason"),
    [
        (WHEEL, {"name": ""}, "Missing project name"),
        (WHEEL, {"name": "-bad name-"}, "Invalid project name '-bad name-'"),
        (WHEEL, {"version": "one.two"}, "Invalid version 'one.two'"),
        (WHEEL, {"filetype": "bdist_egg"}, "Unsupported filetype 'bdist_egg'"),
        (SDIST, {"pyversion": "py3"}, "pyversion must be 'source' for an sdist"),
        (WHEEL, {"pyversion": "source"}, "pyversion must name the wheel's Python tag"),
        (WHEEL, {"pyversion": "cp27"}, "pyversion 'cp27' does not match"),
        (WHEEL, {"name": "other"}, "must start with the project name and version (other 1.0)"),
        (WHEEL, {"version": "2.0"}, "must start with the project name and version (good 2.0)"),
        (SDIST, {"version": "1.1"}, "must start with the project name and version (good 1.1)"),
        (WHEEL, {"filetype": "sdist", "pyversion": "source"}, "a sdist must end with .tar.gz"),
        (SDIST, {"filetype": "bdist_wheel"}, "a bdist_wheel must end with .whl"),
        (WHEEL, {"sha256_digest": None, "blake2_256_digest": None}, "Missing digest"),
        (WHEEL, {"sha256_digest": "0" * 64}, "sha256 digest of the received file does not match"),
        (WHEEL, {"blake2_256_digest": "ab" * 32}, "blake2b_256 digest of the received file"),
        (WHEEL, {"metadata_version": "3.0"}, "Unknown Metadata-Version '3.0'"),
        (WHEEL, {"requires_python": ">=3.x"}, "Invalid Requires-Python '>=3.x'"),
        (WHEEL, {"requires_dist": "foo >=> 1"}, "Invalid Requires-Dist 'foo >=> 1'"),
        (WHEEL, {"summary": "x" * 513}, "summary is too long"),
        (WHEEL, {"project_urls": "no comma here"}, "Invalid project_urls entry"),
        (WHEEL, {"protocol_version": "2"}, "Unsupported protocol_version"),
    ],
)
def test_invalid_form_is_refused(
    testapp, dev, auth, engine, storage_root, built, overrides, reason
):
    response = post(testapp, built, auth(dev), status=400, **overrides)
    assert_refused(response, 400, reason)
    assert_nothing_stored(engine, storage_root)
    assert os.listdir(os.path.join(storage_root, ".staging")) == []


@pytest.mark.parametrize(
    ("filename", "reason"),
    [
        ("../good-1.0.tar.gz", "no path separators"),
        ("dir/good-1.0.tar.gz", "no path separators"),
        ("dir\\good-1.0.tar.gz", "no path separators"),
        ("good-1.0\x01.tar.gz", "control characters"),
        ("good-1.0\x00.tar.gz", "control characters"),
        (".good-1.0.tar.gz", "no path separators"),
        ("good-1.0.tar.bz2", "a sdist must end with .tar.gz or .zip"),
        ("good-1.0.exe", "a sdist must end with .tar.gz or .zip"),
        ("good.tar.gz", "must start with the project name and version"),
    ],
)
def test_unsafe_or_wrong_filenames_are_refused(
    testapp, dev, auth, engine, storage_root, filename, reason
):
    built = (filename, SDIST[1], "")
    response = post(testapp, built, auth(dev), status=400, params=form(SDIST))
    assert_refused(response, 400, reason)
    assert_nothing_stored(engine, storage_root)


def test_file_over_the_limit_is_refused_while_streaming(
    testapp, dev, auth, engine, storage_root, app
):
    limit = app.registry["extrapypi.settings"].upload_limit_bytes
    content = b"x" * (limit + 1)
    built = ("big-1.0.tar.gz", content, "")
    response = post(testapp, built, auth(dev), status=400)
    assert_refused(response, 400, f"File too large: the limit is {limit} bytes")
    assert_nothing_stored(engine, storage_root)
    assert os.listdir(os.path.join(storage_root, ".staging")) == []


@pytest.fixture
def limited(app):
    """Swap the app's settings for the length of one test."""
    import dataclasses

    original = app.registry["extrapypi.settings"]

    def apply(**changes):
        app.registry["extrapypi.settings"] = dataclasses.replace(original, **changes)
        return webtest.TestApp(app, extra_environ={"HTTP_HOST": "example.com"})

    yield apply
    app.registry["extrapypi.settings"] = original


def test_body_over_the_limit_is_refused_before_parsing(limited, dev, auth, engine, storage_root):
    testapp = limited(upload_limit_bytes=1000)
    body = b"--x\r\n" + b"0" * (17 * 1024 * 1024) + b"\r\n--x--\r\n"
    response = testapp.post(
        "/legacy/",
        params=body,
        headers={**auth(dev), "Content-Type": "multipart/form-data; boundary=x"},
        status=400,
    )
    assert_refused(response, 400, "File too large: the limit is 1000 bytes")
    assert_nothing_stored(engine, storage_root)


def test_project_size_limit(limited, dev, auth, storage_root, engine):
    testapp = limited(project_limit_bytes=3000)
    first = sdist_named("sized-1.0.tar.gz", "sized", "1.0", padding=1700)
    second = sdist_named("sized-2.0.tar.gz", "sized", "2.0", padding=1700)
    assert 1900 < len(first[1]) < 2500 and 1900 < len(second[1]) < 2500
    post(testapp, first, auth(dev), status=200)
    response = post(testapp, second, auth(dev), status=400)
    assert_refused(response, 400, "Project size limit reached: sized may hold at most 3000")
    assert rows(engine, File) == 1
    assert stored_files(storage_root) == ["sized/sized-1.0.tar.gz"]
    assert os.listdir(os.path.join(storage_root, ".staging")) == []
    huge = sdist_named("huge-1.0.tar.gz", "huge", "1.0", padding=3001)
    response = post(testapp, huge, auth(dev), status=400)
    assert_refused(response, 400, "Project size limit reached: huge may hold at most 3000")
    assert rows(engine, Package) == 1


def test_changed_content_under_existing_name_is_refused(testapp, dev, auth, engine, storage_root):
    built = sdist_bytes("changing", "1.0")
    post(testapp, built, auth(dev), status=200)
    changed = (built[0], built[1] + b"\0", "")
    response = post(testapp, changed, auth(dev), status=400)
    assert_refused(response, 400, "File already exists")
    assert rows(engine, File) == 1
    with open(os.path.join(storage_root, "changing", built[0]), "rb") as stored:
        assert stored.read() == built[1]
    assert os.listdir(os.path.join(storage_root, ".staging")) == []


def test_deleted_filename_is_never_reusable(testapp, dev, auth, engine, storage_root):
    built = wheel_bytes("buried", "1.0")
    with engine.begin() as connection:
        connection.execute(sa.insert(FileTombstone).values(filename=built[0]))
    response = post(testapp, built, auth(dev), status=400)
    assert_refused(response, 400, "was used by a deleted file and cannot be reused")
    assert_nothing_stored(engine, storage_root)


# --- wheels are opened ------------------------------------------------------------------------


def rezip(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for path, data in members.items():
            archive.writestr(path, data)
    return buffer.getvalue()


def wheel_with(members: dict[str, bytes], name="zz", version="1.0"):
    return (f"{name}-{version}-py3-none-any.whl", rezip(members), "")


@pytest.mark.parametrize(
    ("built", "reason"),
    [
        (("zz-1.0-py3-none-any.whl", b"PK\x03\x04 not a zip", ""), "not a valid zip file"),
        (wheel_with({"zz/__init__.py": b""}), "expected exactly one *.dist-info/METADATA, found 0"),
        (
            wheel_with(
                {
                    "zz-1.0.dist-info/METADATA": metadata_text("zz", "1.0").encode(),
                    "other-1.0.dist-info/METADATA": metadata_text("zz", "1.0").encode(),
                }
            ),
            "found 2",
        ),
        (
            wheel_with({"zz-1.0.dist-info/METADATA": metadata_text("yy", "1.0").encode()}),
            "its METADATA says yy 1.0, the upload says zz 1.0",
        ),
        (
            wheel_with({"zz-1.0.dist-info/METADATA": metadata_text("zz", "1.1").encode()}),
            "its METADATA says zz 1.1",
        ),
        (
            wheel_with(
                {"zz-1.0.dist-info/METADATA": b"Metadata-Version: 9.9\nName: zz\nVersion: 1.0\n"}
            ),
            "unknown Metadata-Version '9.9'",
        ),
    ],
)
def test_bad_wheels_are_refused(testapp, dev, auth, engine, storage_root, built, reason):
    response = post(testapp, built, auth(dev), status=400)
    assert_refused(response, 400, reason)
    assert_nothing_stored(engine, storage_root)
    assert os.listdir(os.path.join(storage_root, ".staging")) == []


def test_zip_bomb_metadata_is_never_expanded(testapp, dev, auth, engine, storage_root):
    bomb = metadata_text("zz", "1.0").encode() + b"\n" + b"A" * (6 * 1024 * 1024)
    built = wheel_with({"zz-1.0.dist-info/METADATA": bomb})
    assert len(built[1]) < 20_000
    response = post(testapp, built, auth(dev), status=400)
    assert_refused(response, 400, "METADATA has an absurd compression ratio")
    assert_nothing_stored(engine, storage_root)


def test_huge_metadata_is_refused(testapp, dev, auth, engine, storage_root):
    huge = metadata_text("zz", "1.0").encode() + os.urandom(9 * 1024 * 1024)
    built = (
        "zz-1.0-py3-none-any.whl",
        rezip({"zz-1.0.dist-info/METADATA": huge}, zipfile.ZIP_STORED),
        "",
    )
    response = post(testapp, built, auth(dev), status=400)
    assert_refused(response, 400, "METADATA is too large")
    assert_nothing_stored(engine, storage_root)


# --- races -------------------------------------------------------------------------------------


def test_concurrent_uploads_of_one_file_one_wins(live_server, data, engine, storage_root):
    import requests

    data.user("racer", Role.DEVELOPER)
    for attempt in range(3):
        built = wheel_bytes("racing", f"1.{attempt}")
        barrier = threading.Barrier(4)
        answers = []

        def send():
            barrier.wait()
            answers.append(
                requests.post(
                    live_server.url + "/legacy/",
                    data=form(built),
                    files={"content": (built[0], built[1])},
                    auth=("racer", "correct horse"),
                    timeout=60,
                )
            )

        threads = [threading.Thread(target=send) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(a.status_code for a in answers) == [200] * 4, [
            (a.status_code, a.reason) for a in answers
        ]
        assert sum("uploaded" in a.text for a in answers) == 1
    assert rows(engine, File) == 3
    assert rows(engine, Package) == 1
    assert os.listdir(os.path.join(storage_root, ".staging")) == []


# --- odd requests ------------------------------------------------------------------------------


def test_truncated_multipart_body_is_400(testapp, dev, auth, engine, storage_root):
    body = b'--x\r\nContent-Disposition: form-data; name=":action"\r\n\r\nfile_upload\r\n--x\r\n'
    response = testapp.post(
        "/legacy/",
        params=body + b'Content-Disposition: form-data; name="content"; filename="a.whl"\r\n\r\nPK',
        headers={**auth(dev), "Content-Type": "multipart/form-data; boundary=x"},
        status=400,
    )
    assert_refused(response, 400, "Malformed or oversized multipart/form-data body")
    assert_nothing_stored(engine, storage_root)


def test_urlencoded_submit_is_gone(testapp, dev, auth):
    response = testapp.post(
        "/legacy/", params={":action": "submit", "name": "x"}, headers=auth(dev), status=410
    )
    assert_refused(response, 410, "Gone: ':action=submit' is retired")


def test_anonymous_upload_on_an_open_index_is_still_challenged(limited, engine, storage_root):
    testapp = limited(anonymous_read=True)
    response = post(testapp, wheel_bytes("anon", "1.0"), {}, status=401)
    assert response.headers["WWW-Authenticate"] == 'Basic realm="extrapypi"'
    assert_nothing_stored(engine, storage_root)


def test_upload_with_only_md5_like_old_setuptools(testapp, dev, auth, engine):
    built = sdist_bytes("oldtool", "1.0")
    post(
        testapp,
        built,
        auth(dev),
        status=200,
        sha256_digest=None,
        blake2_256_digest=None,
        md5_digest=hashlib.md5(built[1]).hexdigest(),
        pyversion="",
    )
    with engine.connect() as connection:
        assert connection.execute(sa.select(File.md5)).scalar() == hashlib.md5(built[1]).hexdigest()


def test_long_descriptive_fields_are_kept_or_cut_not_refused(testapp, dev, auth, engine):
    long_readme = "é" * 40_000  # 80,000 bytes: more than MySQL's plain TEXT would hold
    post(
        testapp,
        sdist_bytes("readme", "1.0"),
        auth(dev),
        status=200,
        description=long_readme,
    )
    with engine.connect() as connection:
        assert connection.execute(sa.select(Release.description)).scalar() == long_readme
    description = "é" * (2 * 1024 * 1024 + 10)  # over the 4 MiB kept for display
    post(
        testapp,
        sdist_bytes("wordy", "1.0"),
        auth(dev),
        status=200,
        author="A. Author, " * 100,
        description=description,
    )
    with engine.connect() as connection:
        release = connection.execute(
            sa.select(*Release.__table__.c)  # description is deferred in the ORM
            .where(Release.version == "1.0")
            .join(Release.package)
            .where(sa.text("packages.normalized_name = 'wordy'"))
        ).one()
    assert len(release.author) == 512
    assert release.description.startswith("é" * 1000)
    assert release.description.endswith("the full text is in the distribution's metadata]")
    assert len(release.description.encode()) <= 4 * 1024 * 1024


def test_form_field_that_is_not_utf8_is_400(testapp, dev, auth, engine, storage_root):
    body = (
        b'--x\r\nContent-Disposition: form-data; name=":action"\r\n\r\nfile_upload\r\n'
        b'--x\r\nContent-Disposition: form-data; name="summary"\r\n\r\n\xff\xfe\r\n--x--\r\n'
    )
    response = testapp.post(
        "/legacy/",
        params=body,
        headers={**auth(dev), "Content-Type": "multipart/form-data; boundary=x"},
        status=400,
    )
    assert_refused(response, 400, "Form field 'summary' is not valid UTF-8 text")
    assert_nothing_stored(engine, storage_root)
