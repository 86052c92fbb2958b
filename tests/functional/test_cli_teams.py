"""``extrapypi team|maintainer|status|namespace`` run as an operator runs them."""

import pytest
from dists import wheel_bytes
from test_upload import post

from extrapypi.permissions import Role
from extrapypi.scripts.cli import main as extrapypi
from extrapypi.services import namespaces as ns
from extrapypi.services import teams
from extrapypi.services.packages import get_package

COMMANDS = [
    ["team"],
    ["team", "add"],
    ["team", "add-member"],
    ["team", "remove-member"],
    ["team", "remove"],
    ["team", "list"],
    ["maintainer"],
    ["maintainer", "add"],
    ["maintainer", "remove"],
    ["maintainer", "list"],
    ["status"],
    ["status", "set"],
    ["namespace"],
    ["namespace", "grant"],
    ["namespace", "revoke"],
    ["namespace", "list"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command, capsys):
    assert extrapypi([*command, "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: extrapypi")


@pytest.fixture
def world(data):
    data.user("dev", Role.DEVELOPER)
    data.user("helper", Role.MAINTAINER)
    data.release_file("demo", "1.0", uploader="dev")
    return data


def run(capsys, *argv) -> tuple[int, str, str]:
    code = extrapypi(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_team_lifecycle(ini_file, world, capsys):
    assert run(capsys, "team", "add", ini_file, "platform")[:2] == (0, "Created team 'platform'.\n")
    assert run(capsys, "team", "add-member", ini_file, "platform", "dev")[0] == 0
    assert run(capsys, "team", "add-member", ini_file, "platform", "helper")[0] == 0
    assert run(capsys, "team", "list", ini_file)[1] == "platform\tdev, helper\n"
    code, _, err = run(capsys, "team", "add-member", ini_file, "platform", "dev")
    assert code == 1 and "dev is already a member of platform." in err
    assert run(capsys, "team", "remove-member", ini_file, "platform", "helper")[0] == 0
    assert run(capsys, "team", "list", ini_file)[1] == "platform\tdev\n"
    code, _, err = run(capsys, "team", "add-member", ini_file, "nope", "dev")
    assert code == 1 and "no team named 'nope'" in err
    code, _, err = run(capsys, "team", "add", ini_file, "Bad Name")
    assert code == 1 and "Invalid team name" in err
    assert run(capsys, "team", "remove", ini_file, "platform")[0] == 0
    assert run(capsys, "team", "list", ini_file)[1] == "No teams.\n"


def test_maintainers_users_and_teams(ini_file, world, capsys):
    run(capsys, "team", "add", ini_file, "platform")
    assert run(capsys, "maintainer", "add", ini_file, "Demo", "helper")[0] == 0
    assert run(capsys, "maintainer", "add", ini_file, "demo", "team:platform")[0] == 0
    out = run(capsys, "maintainer", "list", ini_file, "demo")[1]
    assert out == "dev\tdeveloper\nhelper\tmaintainer\nteam:platform\tteam\n"
    code, _, err = run(capsys, "maintainer", "add", ini_file, "demo", "team:platform")
    assert code == 1 and "team:platform already maintains demo." in err
    code, _, err = run(capsys, "maintainer", "add", ini_file, "nothing", "dev")
    assert code == 1 and "no package named 'nothing'" in err
    assert run(capsys, "maintainer", "remove", ini_file, "demo", "helper")[0] == 0
    assert run(capsys, "maintainer", "remove", ini_file, "demo", "team:platform")[0] == 0
    assert run(capsys, "maintainer", "list", ini_file, "demo")[1] == "dev\tdeveloper\n"


def test_status_set(ini_file, world, capsys):
    code, out, _ = run(capsys, "status", "set", ini_file, "demo", "quarantined", "--reason", "bad")
    assert (code, out) == (0, "demo is quarantined (bad).\n")
    code, out, _ = run(capsys, "status", "set", ini_file, "demo", "quarantined", "--reason", "bad")
    assert out == "demo is quarantined (bad) (unchanged).\n"
    assert run(capsys, "status", "set", ini_file, "demo", "active")[1] == "demo is active.\n"
    assert run(capsys, "status", "set", ini_file, "demo", "haunted")[0] == 2
    tm, dbsession = world.session()
    with tm:
        assert get_package(dbsession, "demo").status == "active"


def test_namespaces(ini_file, world, testapp, auth, capsys):
    run(capsys, "team", "add", ini_file, "platform")
    run(capsys, "team", "add-member", ini_file, "platform", "dev")
    code, out, _ = run(capsys, "namespace", "grant", ini_file, "Acme", "team:platform")
    assert (code, out) == (0, "Granted namespace 'acme' to team:platform.\n")
    assert run(capsys, "namespace", "grant", ini_file, "solo", "helper")[0] == 0
    code, _, err = run(capsys, "namespace", "grant", ini_file, "acme-x", "helper")
    assert code == 1 and "overlaps 'acme', granted to team:platform" in err
    assert run(capsys, "namespace", "list", ini_file)[1] == "acme\tteam:platform\nsolo\thelper\n"
    post(testapp, wheel_bytes("acme-new", "1.0"), auth("dev"), status=200)
    assert run(capsys, "namespace", "revoke", ini_file, "acme")[0] == 0
    code, _, err = run(capsys, "namespace", "revoke", ini_file, "acme")
    assert code == 1 and "No namespace 'acme' is granted." in err
    tm, dbsession = world.session()
    with tm:
        assert [g.name for g in ns.list_namespaces(dbsession)] == ["solo"]
        assert teams.get_team(dbsession, "platform") is not None
