"""Shared fixtures: one app per database backend, a clean slate per test, user factories.

The suite runs against SQLite always and against PostgreSQL and MariaDB when they answer
(DATABASES.md-style URLs below, overridable by environment). Outside CI a missing server skips
that backend's runs with the reason; under CI (``CI=true``) it fails them.
"""

import base64
import os
import secrets
import shutil
import sys
import textwrap
import uuid

import pytest
import sqlalchemy as sa
import transaction
import webtest

import extrapypi.models
from extrapypi import main, schema
from extrapypi.lifecycle import close_app, close_apps
from extrapypi.models import Base, IndexState, get_tm_session
from extrapypi.permissions import Role
from extrapypi.services import serials
from extrapypi.services.accounts import NewUser, create_user
from extrapypi.services.packages import create_package
from extrapypi.services.passwords import NO_POLICY

SERVER_URLS = {
    "postgresql": os.environ.get(
        "EXTRAPYPI_TEST_POSTGRESQL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    ),
    "mysql": os.environ.get(
        "EXTRAPYPI_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4"
    ),
}
BACKENDS = [
    b.strip()
    for b in os.environ.get("EXTRAPYPI_TEST_DATABASES", "sqlite,postgresql,mysql").split(",")
    if b.strip()
]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PASSWORD = "correct horse"
SECRET = "test-secret-" + "x" * 32


def _server_database(backend: str):
    """Create a throw-away database on the server; return (url, drop callback)."""
    admin_url = sa.engine.make_url(SERVER_URLS[backend])
    name = f"extrapypi_test_{uuid.uuid4().hex[:10]}"
    try:
        engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            if backend == "mysql":
                connection.execute(sa.text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
            else:
                connection.execute(sa.text(f"CREATE DATABASE {name}"))
    except sa.exc.OperationalError as error:
        reason = f"{backend} server at {admin_url.render_as_string()} unreachable: {error.orig}"
        if IN_CI:
            pytest.fail(f"CI needs every database: {reason}")
        pytest.skip(reason)

    def drop():
        with engine.connect() as connection:
            if backend == "postgresql":
                connection.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            else:
                connection.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        engine.dispose()

    return admin_url.set(database=name).render_as_string(hide_password=False), drop


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request, tmp_path_factory):
    backend = request.param
    if backend == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "extrapypi.sqlite"
        yield f"sqlite:///{path}"
        close_apps_on(f"sqlite:///{path}")
        return
    url, drop = _server_database(backend)
    yield url
    close_apps_on(url)  # no background thread of an app still open writes to a dropped database
    drop()


@pytest.fixture(scope="session")
def base_settings(database_url, tmp_path_factory) -> dict:
    storage = tmp_path_factory.mktemp("packages")
    return {
        "sqlalchemy.url": database_url,
        "retry.attempts": "3",
        "extrapypi.secret": SECRET,
        "extrapypi.storage": "local",
        "extrapypi.storage.path": str(storage),
        "extrapypi.bcrypt_rounds": "4",
        "extrapypi.dashboard": "true",
        "extrapypi.anonymous_read": "false",
        "extrapypi.upload_limit": "10M",
        # Tests deliver webhooks explicitly (services/webhooks.py deliver_due), not by a thread.
        "extrapypi.webhooks.background": "false",
    }


def write_ini(path, settings: dict, port: int = 6543) -> str:
    """An ini like development.ini, with these app settings."""
    app_lines = "\n".join(f"{k} = {v}" for k, v in settings.items())
    path.write_text(
        textwrap.dedent(
            """\
            [app:main]
            use = egg:extrapypi
            {app}

            [alembic]
            script_location = extrapypi:migrations

            [server:main]
            use = egg:waitress#main
            listen = 127.0.0.1:{port}
            threads = 8

            [loggers]
            keys = root

            [handlers]
            keys = console

            [formatters]
            keys = generic

            [logger_root]
            level = WARN
            handlers = console

            [handler_console]
            class = StreamHandler
            args = (sys.stderr,)
            level = NOTSET
            formatter = generic

            [formatter_generic]
            format = %(levelname)s [%(name)s] %(message)s
            """
        ).format(app=app_lines.replace("%", "%%"), port=port)
    )
    return str(path)


@pytest.fixture(scope="session")
def ini_file(base_settings, tmp_path_factory) -> str:
    return write_ini(tmp_path_factory.mktemp("ini") / "test.ini", base_settings)


@pytest.fixture(autouse=True)
def _dispose_engines_built_by_the_test(monkeypatch):
    """Apps and in-process commands a test builds open engines of their own: close their
    connections after the test, so a run never holds more than one test needs (the servers'
    connection limits are shared with everything else on the machine)."""
    built = []
    get_engine = extrapypi.models.get_engine

    def recording(*args, **kwargs):
        engine = get_engine(*args, **kwargs)
        built.append(engine)
        return engine

    monkeypatch.setattr(extrapypi.models, "get_engine", recording)
    yield
    # Their apps' background threads stop first (webhook delivery, download-count flushes,
    # prefetches), their last counts written, before anything drops or empties their database.
    close_apps(lambda engine: any(engine is mine for mine in built))
    for engine in built:
        engine.dispose()


def close_apps_on(url: str) -> None:
    """Close every app still open on the database at ``url`` (before it is dropped)."""
    database = sa.engine.make_url(url).database
    close_apps(lambda engine: engine.url.database == database)


@pytest.fixture(scope="session")
def app(ini_file, base_settings):
    """The WSGI app on a database migrated by alembic (never ``create_all``)."""
    schema.upgrade(ini_file)
    app = main({}, **base_settings)
    yield app
    close_app(app)


@pytest.fixture(scope="session")
def engine(app):
    return app.registry["db_engine"]


def _clear_database(engine) -> None:
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            if table.name != IndexState.__tablename__:
                connection.execute(table.delete())
        # Emptying the index is a change too: servers' page caches must not outlive it.
        connection.execute(
            IndexState.__table__.update().values(serial=IndexState.__table__.c.serial + 1)
        )
    serials.changed(engine)  # a raw change: this process's apps read the serials again at once


def _clear_storage(root: str) -> None:
    for entry in os.listdir(root):
        full = os.path.join(root, entry)
        if os.path.isdir(full) and entry != ".staging":
            shutil.rmtree(full)
        elif os.path.isfile(full):
            os.unlink(full)


@pytest.fixture
def clean(app, engine, base_settings):
    """Every test starts on an empty database and an empty store, and leaves them so."""
    _clear_database(engine)
    _clear_storage(base_settings["extrapypi.storage.path"])
    app.registry["extrapypi.credential_cache"]._entries.clear()
    yield
    _clear_database(engine)
    _clear_storage(base_settings["extrapypi.storage.path"])


@pytest.fixture
def testapp(app, clean):
    return webtest.TestApp(app, extra_environ={"HTTP_HOST": "example.com"})


class Data:
    """Factories that commit rows, as a running server would see them."""

    def __init__(self, app):
        self.app = app
        self.session_factory = app.registry["dbsession_factory"]

    def session(self):
        tm = transaction.TransactionManager(explicit=True)
        return tm, get_tm_session(self.session_factory, tm)

    def user(
        self,
        username: str,
        role: Role | str = Role.INSTALLER,
        password: str = PASSWORD,
        active: bool = True,
        email: str = "",
    ):
        tm, dbsession = self.session()
        with tm:
            user = create_user(  # rows for tests: any password, the policy is tested apart
                dbsession,
                NewUser(username, password, role, email, active),
                rounds=4,
                policy=NO_POLICY,
            )
            user_id = user.id
        return user_id

    def release_file(
        self,
        name: str,
        version: str,
        *,
        kind: str = "wheel",
        uploader: str | None = None,
        **metadata_args,
    ) -> dict:
        """Store a real wheel or sdist as an upload would (through the services and storage)."""
        import io

        from dists import sdist_bytes, wheel_bytes

        from extrapypi.services.accounts import get_user
        from extrapypi.services.packages import (
            ReleaseMetadata,
            add_file,
            create_release,
            get_package,
            get_release,
        )

        builder = wheel_bytes if kind == "wheel" else sdist_bytes
        filename, content, metadata = builder(name, version, **metadata_args)
        storage = self.app.registry["extrapypi.storage"]
        tm, dbsession = self.session()
        with tm:
            user = get_user(dbsession, uploader) if uploader else None
            package = get_package(dbsession, name) or create_package(dbsession, name, user)
            release = get_release(dbsession, package, version)
            if release is None:
                release = create_release(
                    dbsession,
                    package,
                    version,
                    ReleaseMetadata(
                        metadata_version=metadata_args.get("metadata_version", "2.1"),
                        summary=metadata_args.get("summary", ""),
                        description=metadata_args.get("description", ""),
                        description_content_type=metadata_args.get("description_content_type")
                        or "",
                        requires_python=metadata_args.get("requires_python") or "",
                        requires_dist=list(metadata_args.get("requires_dist", ())),
                    ),
                    user,
                )
            staged = storage.stage(io.BytesIO(content))
            add_file(
                dbsession,
                storage,
                tm.get(),
                release,
                filename=filename,
                filetype="bdist_wheel" if kind == "wheel" else "sdist",
                python_version="py3" if kind == "wheel" else "source",
                staged=staged,
                core_metadata=metadata.encode() if kind == "wheel" else None,
                uploader=user,
            )
        return {"filename": filename, "content": content, "metadata": metadata}

    def package(self, name: str, maintainers: tuple[str, ...] = ()):
        from extrapypi.services.accounts import get_user

        tm, dbsession = self.session()
        with tm:
            package = create_package(dbsession, name, None)
            for username in maintainers:
                package.maintainers.append(get_user(dbsession, username))
            return package.id


@pytest.fixture
def data(app, clean) -> Data:
    return Data(app)


class LiveServer:
    def __init__(self, url: str, process, log_path):
        self.url = url
        self.process = process
        self.log_path = log_path

    def index_url(self, username: str | None = None, password: str = PASSWORD) -> str:
        if username is None:
            return f"{self.url}/simple/"
        host = self.url.split("://", 1)[1]
        return f"http://{username}:{password}@{host}/simple/"

    def log(self) -> str:
        return open(self.log_path).read()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(ini_path: str, port: int, log_path) -> LiveServer:
    """A real ``pserve`` process; waits until /ping answers."""
    import subprocess
    import time
    import urllib.request

    log = open(log_path, "w")
    process = subprocess.Popen([venv_tool("pserve"), ini_path], stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pserve exited: {open(log_path).read()}")
        try:
            with urllib.request.urlopen(url + "/ping", timeout=1) as response:
                if response.read() == b"pong":
                    return LiveServer(url, process, log_path)
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"pserve did not answer /ping: {open(log_path).read()}")


@pytest.fixture(scope="session")
def live_server(app, base_settings, tmp_path_factory):
    """``pserve`` on the same database and storage as ``app`` (so ``data`` factories show).

    It reads the change serials on every request (``serial_check_seconds = 0``): the tests'
    factories write behind its back and check the result at once. The default delay (changes
    reach other servers within 1 s) is tested in ``e2e/test_multi_instance.py``."""
    directory = tmp_path_factory.mktemp("server")
    port = free_port()
    settings = {**base_settings, "extrapypi.serial_check_seconds": "0"}
    ini = write_ini(directory / "server.ini", settings, port=port)
    server = start_server(ini, port, directory / "pserve.log")
    yield server
    server.process.terminate()
    server.process.wait(timeout=10)


def basic_auth(username: str, password: str = PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture
def auth():
    return basic_auth


def random_secret() -> str:
    return secrets.token_urlsafe(24)


def venv_tool(name: str) -> str:
    """A console script installed beside the running Python (uv, twine, pserve, ...)."""
    candidate = os.path.join(os.path.dirname(sys.executable), name)
    return candidate if os.path.exists(candidate) else shutil.which(name) or name


# --- S3: a real moto server process, reached over HTTP ------------------------------------------


class MotoServer:
    def __init__(self, url: str, process, log_path):
        self.url = url
        self.process = process
        self.log_path = log_path

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.url, region_name="us-east-1")

    def log(self) -> str:
        return open(self.log_path).read()


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory):
    """``moto_server`` as its own process on a free port; dummy credentials in the environment.

    The environment is what boto3's standard credential chain reads, in this process and in every
    ``pserve`` the tests start, so no credential ever appears in an ini file.
    """
    import subprocess
    import time
    import urllib.request

    directory = tmp_path_factory.mktemp("moto")
    port = free_port()
    log_path = directory / "moto.log"
    log = open(log_path, "w")
    with pytest.MonkeyPatch.context() as env:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE"):
            env.delenv(name, raising=False)
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", str(directory / "no-credentials"))
        env.setenv("AWS_CONFIG_FILE", str(directory / "no-config"))
        process = subprocess.Popen(
            [venv_tool("moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=log,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"moto_server exited: {open(log_path).read()}")
            try:
                with urllib.request.urlopen(url + "/moto-api/", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    process.kill()
                    raise RuntimeError(f"moto_server did not answer: {open(log_path).read()}")
                time.sleep(0.1)
        try:
            yield MotoServer(url, process, log_path)
        finally:
            process.terminate()
            process.wait(timeout=10)


@pytest.fixture(scope="session")
def s3_bucket(moto_server) -> str:
    """One bucket per test run; tests keep apart by key prefix."""
    bucket = f"extrapypi-test-{uuid.uuid4().hex[:12]}"
    moto_server.client().create_bucket(Bucket=bucket)
    return bucket


def s3_settings(moto_server: MotoServer, bucket: str, prefix: str, **extra) -> dict[str, str]:
    """The ``extrapypi.storage.*`` settings for the moto bucket (no credentials: boto3's chain)."""
    return {
        "extrapypi.storage": "s3",
        "extrapypi.storage.bucket": bucket,
        "extrapypi.storage.prefix": prefix,
        "extrapypi.storage.endpoint_url": moto_server.url,
        "extrapypi.storage.region": "us-east-1",
        "extrapypi.storage.addressing_style": "path",
        **extra,
    }


@pytest.fixture(scope="session")
def s3_app_settings(base_settings, moto_server, s3_bucket) -> dict:
    """``base_settings`` (same database), the files in the moto bucket under their own prefix."""
    prefix = f"app-{uuid.uuid4().hex[:8]}"
    return base_settings | s3_settings(moto_server, s3_bucket, prefix)


@pytest.fixture(scope="session")
def s3_app(app, s3_app_settings):
    """The app on the S3 backend (``app`` has migrated the database)."""
    return main({}, **s3_app_settings)


class S3Data(Data):
    @property
    def storage(self):
        return self.app.registry["extrapypi.storage"]


@pytest.fixture
def s3_data(s3_app, clean) -> S3Data:
    """``data`` for the S3 app: an empty database and an empty prefix in the bucket."""
    data = S3Data(s3_app)
    for key in list(data.storage.iter_keys()):
        data.storage.delete(key)
    return data


def permits(app, headers: dict, package_name: str, permission) -> bool:
    """Whether the real security policy grants ``permission`` on the package to these headers."""
    from pyramid.request import Request
    from pyramid.scripting import prepare

    from extrapypi.resources import PackageResource, Root
    from extrapypi.services.packages import get_package

    request = Request.blank("/", headers=headers)
    env = prepare(request=request, registry=app.registry)
    try:
        with request.tm:
            root = Root(request)
            package = get_package(request.dbsession, package_name)
            context = PackageResource(request, package, parent=root["packages"], name=package_name)
            return bool(request.has_permission(permission, context))
    finally:
        env["closer"]()
