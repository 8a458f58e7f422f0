"""The command-line shell: every command has --help, errors are one line with status 2."""

import subprocess
import sys

import pytest

from emgtool.cli import COMMANDS, build_parser, main


@pytest.mark.parametrize("name", [c.replace("_", "-") for c in COMMANDS])
def test_every_command_has_help(name, capsys):
    with pytest.raises(SystemExit) as e:
        main([name, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "usage: emgtool " + name in out and len(out) > 200


def test_parser_lists_every_command():
    text = build_parser().format_help()
    for name in COMMANDS:
        assert name.replace("_", "-") in text


def test_missing_file_is_one_line_exit_2(tmp_path, capsys):
    rc = main(["analyze", str(tmp_path / "nope.edf"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert err[0].startswith("emgtool: error:") and "nope.edf" in err[0]
    assert "Traceback" not in err[0]
    assert not (tmp_path / "o").exists()


def test_python_dash_m_works():
    r = subprocess.run(
        [sys.executable, "-m", "emgtool", "--version"], capture_output=True, text=True
    )
    assert r.returncode == 0 and r.stdout.startswith("emgtool ")
