"""The command line's arguments: what `--help` says and which names it takes."""

from __future__ import annotations

import json

import pytest

from router.cli import main


def test_events_takes_the_config_kind_email_for_the_ses_shape(capsys) -> None:
    assert main(["events", "--kind", "ses"]) == 0
    ses = json.loads(capsys.readouterr().out)
    assert main(["events", "--kind", "email"]) == 0
    assert json.loads(capsys.readouterr().out) == ses
    assert ses["Records"][0]["eventSource"] == "aws:ses"


@pytest.mark.parametrize("command", ["serve", "validate"])
def test_help_shows_the_default_config(command: str, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    assert "(default: config/router.yaml)" in " ".join(capsys.readouterr().out.split())
