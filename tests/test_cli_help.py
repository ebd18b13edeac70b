"""Every option of every command says what it does, and every command takes the run as --bundle."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest


def _parsers() -> dict[str, argparse.ArgumentParser]:
    from tailsynth.evaluate.__main__ import build_parser as evaluate_parser
    from tailsynth.gen.__main__ import build_parser as gen_parser
    from tailsynth.train.__main__ import build_parser as train_parser

    return {"tailsynth train": train_parser(), "tailsynth gen": gen_parser(), "tailsynth evaluate": evaluate_parser()}


def _walk(name: str, parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """The parser and every sub-command's parser, by command line."""
    yield name, parser
    for action in parser._actions:  # argparse has no public walk of its sub-parsers
        if isinstance(action, argparse._SubParsersAction):
            for command, child in action.choices.items():
                yield from _walk(f"{name} {command}", child)


COMMANDS = [(command, parser) for name, top in _parsers().items() for command, parser in _walk(name, top)]


def test_every_command_is_walked() -> None:
    names = {command for command, _ in COMMANDS}
    assert {"tailsynth gen sample", "tailsynth gen augment", "tailsynth gen cold-start", "tailsynth evaluate report",
            "tailsynth evaluate bench", "tailsynth evaluate bench-cold-start", "tailsynth evaluate utility",
            "tailsynth evaluate fidelity", "tailsynth train"} <= names


@pytest.mark.parametrize(("command", "parser"), COMMANDS, ids=[command for command, _ in COMMANDS])
def test_every_option_has_help(command: str, parser: argparse.ArgumentParser) -> None:
    missing = [action.option_strings[0] if action.option_strings else action.dest for action in parser._actions
               if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction))
               and action.help != argparse.SUPPRESS and not (action.help or "").strip()]
    assert not missing, f"{command}: options without help text: {missing}"


@pytest.mark.parametrize(("command", "parser"), [(c, p) for c, p in COMMANDS if c.split()[-1] in
                                                 ("sample", "augment", "cold-start", "report", "bench-cold-start",
                                                  "utility")], ids=lambda value: value if isinstance(value, str) else "")
def test_every_command_on_a_run_takes_it_as_bundle(command: str, parser: argparse.ArgumentParser) -> None:
    assert any("--bundle" in action.option_strings for action in parser._actions), command


def test_bench_cold_start_takes_the_run_as_bundle_and_still_reads_the_old_positional(
        capsys: pytest.CaptureFixture) -> None:
    from tailsynth.evaluate.__main__ import build_parser
    from tailsynth.evaluate.bench.cold_start import bundle_argument

    parser = build_parser()
    assert bundle_argument(parser.parse_args(["bench-cold-start", "--bundle", "runs/x", "--per-item", "2"])) == "runs/x"
    assert capsys.readouterr().err == ""
    assert bundle_argument(parser.parse_args(["bench-cold-start", "runs/old", "--augment"])) == "runs/old"
    assert "deprecated; write --bundle runs/old" in capsys.readouterr().err
    with pytest.raises(ValueError, match="required: --bundle RUN"):
        bundle_argument(parser.parse_args(["bench-cold-start", "--items", "3"]))


def test_gate_overrides_are_parsed_once_for_every_command() -> None:
    from tailsynth.gen.gate_overrides import gate_config, parse_overrides
    from tailsynth.models.errors import ConfigError

    overrides = parse_overrides(["alpha=1e-100", "min_holdout_rows=50", "selection=ratio"])
    assert overrides == {"alpha": 1e-100, "min_holdout_rows": 50, "selection": "ratio"}
    config = gate_config({"max_auc": 0.65, "min_holdout_rows": 200}, overrides, where="gen sample")
    assert (config.alpha, config.max_auc, config.min_holdout_rows) == (1e-100, 0.65, 50)
    with pytest.raises(ConfigError, match=r"--gate 'min_holdout_rows': expected KEY=VALUE"):
        parse_overrides(["min_holdout_rows"])
    with pytest.raises(ConfigError, match=r"gen sample --gate.*max_aucc"):
        gate_config({}, {"max_aucc": 0.7}, where="gen sample")


def test_evaluate_commands_take_settings_as_set_read_like_train() -> None:
    from tailsynth.evaluate.__main__ import build_parser
    from tailsynth.evaluate.bench.cold_start import run
    from tailsynth.evaluate.bench.settings import load_bench_config
    from tailsynth.gen.gate_overrides import parse_settings
    from tailsynth.models.errors import ConfigError

    parser = build_parser()
    args = parser.parse_args(["bench", "--set", "monitor.enabled=false", "trainer.max_epochs=2",
                              "--set", "model.ctgan.generator_lr=3e-4", "--set", "bench.auc=false"])  # repeatable
    config, bench = load_bench_config("configs/bench_online_retail.yaml", args.set)
    assert config.monitor.enabled is False and config.trainer.max_epochs == 2 and bench.auc is False
    assert config.model.ctgan.generator_lr == 3e-4  # a number, as `tailsynth train --set` reads it
    with pytest.raises(SystemExit):  # the old option is gone: argparse's usage error
        parser.parse_args(["bench", "--override", "monitor.enabled=false"])

    cold = parser.parse_args(["bench-cold-start", "--bundle", "runs/x", "--set", "gate.min_holdout_rows=50",
                              "--set", "gate.alpha=1e-3"])
    assert parse_settings(cold.set, conditions=False).gate == {"min_holdout_rows": 50, "alpha": 0.001}
    memory = parser.parse_args(["bench-cold-start", "--bundle", "runs/x", "--set", "max_memory_gib=4"])
    with pytest.raises(ConfigError, match="only gate.KEY"):
        run(memory)  # refused before any bundle is read


@pytest.mark.parametrize(("argv", "message"), [
    (["--epochs", "0"], "epochs 0: expected at least 1"),
    (["--budget-s", "0"], "budget_s 0.0: expected a positive"),
    (["--rows", "0"], "rows 0: expected at least 1"),
    (["--encoder-rows", "-1"], "encoder_rows -1: expected 0"),
])
def test_bench_numbers_are_checked_once_before_any_work(argv: list[str], message: str, tmp_path,
                                                        capsys: pytest.CaptureFixture) -> None:
    import torch

    from tailsynth.evaluate.__main__ import main

    threads = torch.get_num_threads()
    try:
        code = main(["bench", "--systems", "ours-tvae", "--out", str(tmp_path / "bench"), *argv])
    finally:
        torch.set_num_threads(threads)  # the command sets its process's thread count
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "bench").exists()
