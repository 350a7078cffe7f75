"""bot.serve hands the API token to Rasa's own command-line parser, whatever characters the
generated token (``secrets.token_urlsafe``: letters, digits, ``-`` and ``_``) starts with.

A token starting with "-" once stopped every Rasa replica of a CI run: Rasa's parser read it
as an option ("argument -t/--auth-token: expected one argument")."""

from __future__ import annotations

import pytest
from rasa.__main__ import create_argument_parser

from bot.serve import rasa_argv


@pytest.mark.parametrize("token", ["-" + "k" * 42, "--" + "x" * 41, "_" + "y" * 42, "z" * 43])
def test_rasas_parser_gets_the_whole_token(token: str) -> None:
    argv = rasa_argv(
        ["run", "--enable-api", "-i", "127.0.0.1", "--port", "5005"],
        {"ASKAGENCY_RASA_TOKEN": token},
    )
    args = create_argument_parser().parse_args(argv[1:])
    assert args.auth_token == token
    assert args.port == 5005 and args.interface == "127.0.0.1"
