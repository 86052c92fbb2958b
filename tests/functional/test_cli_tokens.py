"""``extrapypi token create|list|revoke`` as an operator runs them, checked by real requests."""

import pytest
from test_security import PIP
from test_tokens import token_auth

from extrapypi.permissions import Role
from extrapypi.scripts.cli import main as extrapypi


def run(capsys, *argv) -> tuple[int, str, str]:
    code = extrapypi(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("action", ["create", "list", "revoke"])
def test_token_commands_have_help(action, capsys):
    assert extrapypi(["token", action, "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: extrapypi token")


def test_token_create_list_revoke(ini_file, data, testapp, capsys):
    data.user("alice", Role.DEVELOPER)
    data.release_file("alpha", "1.0", uploader="alice")
    code, out, err = run(
        capsys,
        "token",
        "create",
        ini_file,
        "alice",
        "--name",
        "ci-release",
        "--project",
        "Alpha",
        "--expires",
        "30",
    )
    assert code == 0, err
    token = out.strip()
    assert out == token + "\n" and token.startswith("xpypi-")  # stdout: the token, nothing else
    assert "shown only this once" in err
    testapp.get("/simple/alpha/", headers={**PIP, **token_auth(token)}, status=200)

    code, listing, _ = run(capsys, "token", "list", ini_file)
    assert code == 0
    line = listing.splitlines()[0]
    token_id = token[6:18]
    assert line.startswith(f"{token_id}  alice  'ci-release'  scope=upload  projects=alpha")
    assert "expires=20" in line and "last-used=20" in line and "active" in line
    assert token.split("-", 2)[2] not in listing  # never the secret
    assert listing.splitlines()[-1] == "1 token"
    assert run(capsys, "token", "list", ini_file, "alice")[1] == listing

    code, out, _ = run(capsys, "token", "revoke", ini_file, token)  # the whole token works
    assert (code, out) == (0, f"Revoked token {token_id} of alice.\n")
    again = run(capsys, "token", "revoke", ini_file, token_id)[1]
    assert again == f"{token_id} was revoked already.\n"
    refused = testapp.get("/simple/alpha/", headers={**PIP, **token_auth(token)}, status=401)
    assert "is revoked" in refused.status
    assert "revoked 20" in run(capsys, "token", "list", ini_file)[1]


def test_token_create_refusals(ini_file, data, capsys):
    data.user("alice", Role.INSTALLER)
    code, out, err = run(capsys, "token", "create", ini_file, "nobody", "--name", "x")
    assert (code, out) == (1, "") and "no user named 'nobody'" in err
    code, out, err = run(
        capsys,
        "token",
        "create",
        ini_file,
        "alice",
        "--name",
        "x",
        "--scope",
        "read",
        "--project",
        "alpha",
    )
    assert (code, out) == (1, "") and "needs the 'upload' scope" in err
    code, out, err = run(capsys, "token", "revoke", ini_file, "xpypi-000000000000-abc")
    assert code == 1 and "no such token" in err
