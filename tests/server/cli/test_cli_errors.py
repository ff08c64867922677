"""Every command that takes a file or needs the store, given a missing file, a directory, a text file or a bad
setting, prints one line naming the problem and what to do, with the documented exit code and no traceback
unless --verbose; `series --version`; help text on every argument; `series token` says when it cannot work."""

from __future__ import annotations

import argparse

import pytest

from server.cli.common import EXIT_FAILED, EXIT_REJECTED, EXIT_USAGE
from server.cli.main import build_parser, main
from tests.conftest import settings_env
from tests.support.catalog import add_series_for

FILE_COMMANDS = [
    ("validate", "{file}"),
    ("ingest", "{file}", "--series", "s1", "--episode", "1"),
    ("demo", "--sample", "{file}"),
    ("creator", "check", "c1", "--facts", "@{file}"),
]
STORE_COMMANDS = [
    ("grant", "--viewer", "v1", "--series", "s1"),
    ("revoke", "--viewer", "v1", "--series", "s1"),
    ("token", "--viewer", "v1", "--series", "s1"),
    ("account-token", "--subject", "v1", "--role", "viewer"),
    ("series", "list"),
    ("creator", "pending"),
    ("jobs",),
    ("gc", "--dry-run"),
    ("ingest", "{file}", "--series", "s1", "--episode", "1"),
    ("serve",),
]


@pytest.fixture
def run(tmp_path, s3_store, monkeypatch, capsys):
    """run(*argv, **SERIES_ overrides) → (exit code, stdout, stderr), main() in this process."""
    for name, value in settings_env(tmp_path / "data", s3_store).items():
        monkeypatch.setenv(name, value)

    def invoke(*argv: str, **overrides: str) -> tuple[int, str, str]:
        for name, value in overrides.items():
            monkeypatch.setenv(f"SERIES_{name}", value)
        try:
            code = main(list(argv))
        except SystemExit as exit_:      # argparse
            code = exit_.code
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke


def _argv(template: tuple[str, ...], file: str) -> list[str]:
    return [part.format(file=file) for part in template]


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.mark.parametrize("template", FILE_COMMANDS, ids=lambda t: " ".join(t[:2]))
def test_a_missing_file_or_a_directory_is_one_line_and_exit_2(run, tmp_path, template):
    code, _, err = run(*_argv(template, str(tmp_path / "missing.mp4")))
    assert code == EXIT_USAGE
    assert "missing.mp4: no such file; check the name" in _one_line(err)
    code, _, err = run(*_argv(template, str(tmp_path)))
    assert code == EXIT_USAGE
    assert "is a directory; give the path of one file" in _one_line(err)


def test_an_unreadable_file_is_one_line(run, tmp_path):
    locked = tmp_path / "locked.mp4"
    locked.write_bytes(b"x")
    locked.chmod(0)
    try:
        code, _, err = run("validate", str(locked))
    finally:
        locked.chmod(0o600)
    import os
    if os.geteuid() == 0:       # root reads anything: then the file is simply judged
        assert code == EXIT_REJECTED
    else:
        assert code == EXIT_USAGE and "cannot be read (permission denied)" in _one_line(err)


@pytest.mark.parametrize("template, code, says", [
    (FILE_COMMANDS[0], EXIT_REJECTED, "not_media"),
    (FILE_COMMANDS[3], EXIT_FAILED, "invalid_field: facts: not valid JSON"),
], ids=["validate", "creator check"])
def test_a_text_file_is_one_line(run, not_media, template, code, says):
    got, _, err = run(*_argv(template, str(not_media)))
    assert got == code and says in _one_line(err)


@pytest.mark.parametrize("template", STORE_COMMANDS + FILE_COMMANDS[:1], ids=lambda t: " ".join(t[:2]))
@pytest.mark.parametrize("setting, value, says", [
    ("TOKEN_KEYS", "k1:YQ==", "SERIES_TOKEN_KEYS entry 'k1' decodes to 1 byte"),
    ("TOKEN_KID", "nope", "SERIES_TOKEN_KID is 'nope', which SERIES_TOKEN_KEYS does not define"),
    ("LISTEN_PORT", "eighty", "SERIES_LISTEN_PORT has value 'eighty'; expected an integer"),
])
def test_a_bad_setting_is_one_line_naming_the_variable(run, landscape_clip, template, setting, value, says):
    code, _, err = run(*_argv(template, str(landscape_clip)), **{setting: value})
    assert code == EXIT_FAILED
    line = _one_line(err)
    assert line.startswith("series: configuration error: ") and says in line


def test_an_unreachable_store_is_one_line_and_verbose_adds_the_traceback(run, landscape_clip):
    args = ("ingest", str(landscape_clip), "--series", "s1", "--episode", "1")
    code, _, err = run(*args, S3_ENDPOINT="127.0.0.1:1")
    assert code == EXIT_FAILED
    failure = [line for line in err.splitlines() if line.startswith("series: ")]
    assert len(failure) == 1 and "store_unavailable" in failure[0] and "Traceback" not in err
    code, _, err = run("--verbose", *args, S3_ENDPOINT="127.0.0.1:1")
    assert code == EXIT_FAILED and "Traceback" in err


def test_version(run):
    code, out, _ = run("--version")
    assert code == 0 and out.startswith("series ") and out.strip() != "series"


def test_every_argument_of_every_command_has_help_text():
    missing = []

    def walk(parser: argparse.ArgumentParser) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub)
            elif not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{parser.prog} {'/'.join(action.option_strings) or action.dest}")

    walk(build_parser())
    assert missing == []


def test_token_for_a_viewer_without_the_series_says_how_to_grant_it(run, tmp_path, s3_store):
    from server.config import Settings

    add_series_for(Settings.from_env(settings_env(tmp_path / "data", s3_store)), "s1")
    code, out, err = run("token", "--viewer", "v1", "--series", "s1", "--episode", "1")
    assert code == 0 and len(out.splitlines()) == 2
    assert "series grant --viewer v1 --series s1" in _one_line(err)
    assert run("grant", "--viewer", "v1", "--series", "s1")[0] == 0
    code, out, err = run("token", "--viewer", "v1", "--series", "s1")
    assert code == 0 and err.strip() == ""
    code, out, err = run("token", "--viewer", "v1", "--series", "nope")
    assert "series nope does not exist yet" in _one_line(err)
