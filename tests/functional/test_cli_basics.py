"""The first minutes with the command: --version, defaults in every --help, one-line refusals,
a progress bar only where someone watches."""

import argparse
import io
import subprocess

from conftest import venv_tool
from test_cli import extrapypi, stdin  # noqa: F401 (a fixture)

from extrapypi.scripts.cli import build_parser
from extrapypi.scripts.progress import progress


def test_version(capsys):
    assert extrapypi(["--version"]) == 0
    assert capsys.readouterr().out.strip() == "extrapypi 0.1.0"
    result = subprocess.run(
        [venv_tool("extrapypi"), "--version"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and result.stdout.strip() == "extrapypi 0.1.0"


def _parsers(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, (*prefix, name))


def test_every_help_states_the_defaults():
    checked = 0
    for path, parser in _parsers(build_parser()):
        text = " ".join(parser.format_help().split())
        for action in parser._actions:
            if action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
                continue
            checked += 1
            shown = "(default: none)" if action.default == "" else f"(default: {action.default})"
            assert shown in text, (path, action.option_strings, text)
    assert checked >= 12  # user add --role, check --min-staged-age, init --admin-user, ...


def test_user_add_help_says_installer_is_the_default(capsys):
    assert extrapypi(["user", "add", "--help"]) == 0
    assert "(default: installer)" in " ".join(capsys.readouterr().out.split())


def test_no_terminal_is_one_line_without_the_usage(ini_file, data, stdin, capsys):  # noqa: F811
    stdin("piped but not announced\n")
    assert extrapypi(["user", "add", ini_file, "someone"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "extrapypi: error: no terminal to ask for the password: pass it with --password-stdin"
    ]


def test_init_help_calls_a_password_on_argv_unsafe(capsys):
    assert extrapypi(["init", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "UNSAFE outside development" in text
    assert "visible to other users (ps)" in text


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_terminal_and_for_big_stores():
    terminal = Terminal()
    with progress(10_000, "files", stream=terminal) as advance:
        for _ in range(10_000):
            advance()
    assert "/10000" in terminal.getvalue() and "files" in terminal.getvalue()
    small = Terminal()
    with progress(9_999, "files", stream=small) as advance:
        advance()
    assert small.getvalue() == ""
    piped = io.StringIO()
    with progress(50_000, "files", stream=piped) as advance:
        advance()
    assert piped.getvalue() == ""


def test_check_export_import_print_no_bar_when_piped(ini_file, data, tmp_path, capsys):
    data.release_file("quiet", "1.0")
    assert extrapypi(["check", ini_file]) == 0
    assert capsys.readouterr().err == ""
    assert extrapypi(["export", ini_file, str(tmp_path / "out")]) == 0
    assert capsys.readouterr().err == ""
