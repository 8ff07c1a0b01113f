"""The shared argument grammar (bench.args): name lists, numbers, one-line usage errors."""

import argparse

import pytest

from bench import args as shared
from bench import cli
from bench.errors import UserError
from bench.measure import options
from bench.registry import REGISTRY


@pytest.mark.parametrize(("text", "value"), [("10%", 0.10), ("0.1", 0.1), ("2.5 %", 0.025)])
def test_threshold(text, value):
    assert shared.threshold(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["10", "ten", "-5%", "0%"])
def test_threshold_rejects(text):
    with pytest.raises(argparse.ArgumentTypeError):
        shared.threshold(text)


@pytest.mark.parametrize("text", ["0", "1", "nan", "x", "-0.1"])
def test_alpha_rejects(text):
    with pytest.raises(argparse.ArgumentTypeError):
        shared.alpha(text)


@pytest.mark.parametrize(("parse", "text"), [(shared.positive_int, "0"),
                                             (shared.positive_int, "1.5"),
                                             (shared.non_negative_int, "-1"),
                                             (shared.positive_float, "0"),
                                             (shared.positive_float, "inf"),
                                             (shared.fraction, "0"),
                                             (shared.fraction, "1.01"),
                                             (shared.fraction, "nan")])
def test_numbers_reject(parse, text):
    with pytest.raises(argparse.ArgumentTypeError):
        parse(text)


def test_a_fraction_may_be_one():
    assert shared.fraction("1") == 1.0
    assert shared.fraction("0.9") == 0.9


def test_settings_given_in_code_meet_their_flags_rule():
    shared.check_setting("--batch", 128, shared.positive_int)
    shared.check_setting("--lr", 1e-3, shared.positive_float)
    with pytest.raises(UserError, match=r"^--batch: must be at least 1, got 0$"):
        shared.check_setting("--batch", 0, shared.positive_int)
    with pytest.raises(UserError, match=r"^--hidden: True is not a number$"):
        shared.check_setting("--hidden", True, shared.positive_int)
    with pytest.raises(UserError, match=r"^--lr: '1e-3' is not a number$"):
        shared.check_setting("--lr", "1e-3", shared.positive_float)  # text, not a number


def _names(*argv, default=None):
    parser = argparse.ArgumentParser()
    shared.add_names(parser, "--impl", help="x", default=default)
    return parser.parse_args(list(argv)).impl


def test_name_lists_take_repeats_spaces_and_commas_alike():
    assert _names("--impl", "a,b", "c", "--impl", "d") == ["a", "b", "c", "d"]
    assert _names("--impl", "a", "--impl", "b") == _names("--impl", "a,b") == ["a", "b"]
    assert _names("--impl", "a", "b") == ["a", "b"]
    assert _names(default=["all"]) == ["all"]
    assert _names("--impl", "x", default=["all"]) == ["x"]  # given names replace the default


@pytest.mark.parametrize("command", ["run", "ab", "verify", "tta", "history series",
                                     "history changes", "publish --out site"])
def test_every_command_takes_one_impl_grammar(command):
    parser = cli.build_parser()
    command = command.split()
    comma = parser.parse_args([*command, "--impl", "keras_lstm,basic_lstm"]).impl
    repeat = parser.parse_args([*command, "--impl", "keras_lstm", "--impl", "basic_lstm"]).impl
    spaced = parser.parse_args([*command, "--impl", "keras_lstm", "basic_lstm"]).impl
    assert comma == repeat == spaced == ["keras_lstm", "basic_lstm"]


def test_verify_with_a_comma_list_names_the_unknown_member(capsys):
    assert cli.main(["verify", "--impl", "basic_rnn,nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"rnnbench verify: error: unknown implementation 'nope'; valid: "
                   f"{', '.join(REGISTRY)}"]


@pytest.mark.parametrize(("argv", "message"), [
    (["ab", "--rounds", "0"], "argument --rounds: must be at least 1, got 0"),
    (["ab", "--warmup", "-1"], "argument --warmup: must be 0 or more, got -1"),
    (["tta", "--threads", "0"], "argument --threads: must be at least 1, got 0"),
    (["check", "--baseline", "a", "--current", "b", "--alpha", "2"],
     "argument --alpha: alpha must be between 0 and 1"),
    (["nosuch"], "argument COMMAND: invalid choice: 'nosuch'"),
])
def test_usage_errors_are_one_line_exit_2(argv, message, capsys):
    assert cli.main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(("rnnbench: error: ", f"rnnbench {argv[0]}: error: "))
    assert message in lines[0]


@pytest.mark.parametrize("flag", ["--impl", "--unroll", "--phase", "--device", "--dtype",
                                  "--lengths", "-k"])
def test_every_filter_names_a_run_filtered(flag):
    """Each filter of the options table makes `run` name its folder `-filtered`."""
    parser = cli.build_parser()
    assert options.is_filtered(parser.parse_args(["run", flag, "x"]))
    assert not options.is_filtered(parser.parse_args(["run"]))
