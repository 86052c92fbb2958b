"""``extrapypi publisher add|list|remove`` as an operator runs them."""

import pytest
from conftest import write_ini
from test_cli_tokens import run

from extrapypi.models import TrustedPublisher
from extrapypi.permissions import Role
from extrapypi.scripts.cli import main as extrapypi

GITHUB = "https://token.actions.githubusercontent.com"


@pytest.fixture
def oidc_ini(base_settings, tmp_path):
    settings = {**base_settings, "extrapypi.oidc.issuers": f"{GITHUB} https://gitlab.example.com"}
    return write_ini(tmp_path / "oidc.ini", settings)


@pytest.mark.parametrize("action", ["add", "list", "remove"])
def test_publisher_commands_have_help(action, capsys):
    assert extrapypi(["publisher", action, "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: extrapypi publisher")


def test_publisher_add_list_remove(oidc_ini, data, capsys):
    data.user("alice", Role.DEVELOPER)
    data.release_file("widget", "1.0", uploader="alice")
    code, out, err = run(
        capsys,
        "publisher",
        "add",
        oidc_ini,
        "Widget",
        "--issuer",
        GITHUB,
        "--claim",
        "repository=acme/widget",
        "--claim",
        "environment=release",
    )
    assert code == 0, err
    assert out.startswith("Added publisher: ")
    assert "widget  active  issuer=" + GITHUB in out
    assert "claims: environment=release repository=acme/widget  by=alice" in out
    code, out, err = run(
        capsys,
        "publisher",
        "add",
        oidc_ini,
        "brand-new",
        "--issuer",
        "https://gitlab.example.com",
        "--claim",
        "project_path=acme/brand-new",
        "--owner",
        "alice",
    )
    assert code == 0, err
    assert "brand-new  pending" in out
    code, listing, _ = run(capsys, "publisher", "list", oidc_ini)
    lines = listing.splitlines()
    assert len(lines) == 3 and lines[-1] == "2 publishers"
    code, only, _ = run(capsys, "publisher", "list", oidc_ini, "WIDGET")
    assert only.splitlines()[-1] == "1 publisher" and "widget  active" in only
    publisher_id = int(lines[0].split()[0])
    code, out, _ = run(capsys, "publisher", "remove", oidc_ini, str(publisher_id))
    assert code == 0 and out.startswith(f"Removed publisher: {publisher_id}  widget")
    tm, dbsession = data.session()
    with tm:
        assert dbsession.get(TrustedPublisher, publisher_id) is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["widget", "--issuer", "https://evil.example", "--claim", "repository=a/b"],
            "is not a trusted issuer",
        ),
        (["widget", "--issuer", GITHUB, "--claim", "repository"], "is not a claim"),
        (["widget", "--issuer", GITHUB, "--claim", "aud=x"], "cannot be matched"),
        (["nothing-here", "--issuer", GITHUB, "--claim", "repository=a/b"], "--owner USERNAME"),
        (["widget", "--issuer", GITHUB, "--claim", "repository=a/b", "--pending"], "exists"),
    ],
)
def test_publisher_add_refusals(oidc_ini, data, capsys, argv, message):
    data.user("alice", Role.DEVELOPER)
    data.release_file("widget", "1.0", uploader="alice")
    code, _out, err = run(capsys, "publisher", "add", oidc_ini, *argv)
    assert code == 1 and message in err, err


def test_publisher_remove_unknown(oidc_ini, data, capsys):
    code, _out, err = run(capsys, "publisher", "remove", oidc_ini, "999")
    assert code == 1 and "no such publisher" in err
