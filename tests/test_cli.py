"""`ladder-jax VERB` prints one line for any failure (exit 2 bad input, 1 internal), a traceback only with --debug."""

import pytest

from ladder_jax import cli


def test_bad_input_is_one_line_and_exit_2(capsys):
    assert cli.main(["smoke", "--new-tokens", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["ladder-jax smoke: ValueError: --new-tokens must be at least 1, got 0; run again with --debug for the traceback"]


def test_internal_error_is_one_line_exit_1_and_debug_shows_the_traceback(monkeypatch, capsys):
    import ladder_jax.smoke as smoke

    def broken(verb, args):
        raise ZeroDivisionError("division by zero in a verb")

    monkeypatch.setattr(smoke, "main", broken)
    assert cli.main(["smoke"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ZeroDivisionError: division by zero in a verb" in err[0] and "please report" in err[0]
    with pytest.raises(ZeroDivisionError):
        cli.main(["smoke", "--debug"])


@pytest.mark.parametrize("verb", sorted(cli.VERBS))
def test_every_verb_accepts_debug(verb):
    _, parser = cli.verb_module(verb)
    assert "--debug" in parser.format_help()
