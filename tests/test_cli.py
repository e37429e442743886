"""The command line as a whole: every command describes itself; `moodscope models`."""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path

import pytest

from conftest import fresh_python
from moodscope.analysis.pretrained import SHIPPED_MODELS, load_model
from moodscope.cli import COMMAND_MODULES, build_parser, command_module, main
from moodscope.models.checkpoint import save_random_checkpoint


def subcommands(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, argparse.ArgumentParser]:
    """Every (nested) subcommand parser, keyed by its command line (``library scan``)."""
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[f"{prefix}{name}"] = sub
                found.update(subcommands(sub, f"{prefix}{name} "))
    return found


def test_every_command_has_a_description_longer_than_its_help_line():
    commands = subcommands(build_parser())
    assert {"library stats", "library show", "library map"} <= set(commands)
    short = [name for name, p in commands.items() if not p.description or len(p.description) < 40]
    assert not short, f"commands without a real description: {short}"


def test_models_lists_the_shipped_models_with_figures_hash_and_licence(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in SHIPPED_MODELS:
        assert f"{name}" in out and load_model(name).content_hash in out
    assert out.startswith("accurate (default)")
    assert "research use only" in out and "ISC" in out and "macro-F1 0." in out
    assert main(["models", "--format", "json"]) == 0
    cards = {c["name"]: c for c in json.loads(capsys.readouterr().out)}
    assert set(cards) == set(SHIPPED_MODELS)
    accurate = cards["accurate"]
    assert 0.5 < accurate["figures"]["song_macro_f1"] <= 1 and "cross-validation" in accurate["evaluation"]
    assert accurate["content_hash"] == load_model("accurate").content_hash and len(accurate["files"]) == 3
    assert accurate["size_bytes"] == sum(Path(f).stat().st_size for f in accurate["files"])


def test_models_describes_a_checkpoint(tmp_path, capsys):
    path = save_random_checkpoint(tmp_path / "tiny.pt")
    assert main(["models", str(path), "--format", "json"]) == 0
    [card] = json.loads(capsys.readouterr().out)
    assert (
        card["name"] == "hybrid:tiny.pt"
        and card["figures"] == {}
        and card["licence"] == "not recorded in the checkpoint"
    )
    assert main(["models", str(tmp_path / "missing.pt")]) == 1
    assert "missing.pt" in capsys.readouterr().err


def test_help_does_not_import_numpy_or_torch():
    code = (
        "import sys; from moodscope.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('numpy', 'torch', 'pandas') if m in sys.modules))"
    )
    out = fresh_python(code)
    assert out.strip() == "[]"


def test_a_command_imports_and_builds_only_its_own_module(capsys):
    """`moodscope features ...` builds the parser of its module only (start-up); each command maps to
    the module that registers it, and an unknown command still gets the full list of choices."""
    for module in COMMAND_MODULES:
        own = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(f"moodscope.cli.{module}").register(own)
        for command in own.choices:
            assert command_module(["-v", command, "--help"]) == module, command
    assert command_module(["-q"]) is None and command_module(["featurez"]) is None
    code = (
        "import sys; from moodscope.cli import build_parser, command_module, COMMAND_MODULES\n"
        "args = build_parser(command_module(['-q', 'evaluate', 'm.pt', '--dataset', '4q', '--root', 'x'])).parse_args("
        "['-q', 'evaluate', 'm.pt', '--dataset', '4q', '--root', 'x'])\n"
        "print(args.command, *sorted(m for m in COMMAND_MODULES if f'moodscope.cli.{m}' in sys.modules))"
    )
    out = fresh_python(code)
    assert out.split() == ["evaluate", "train"]
    with pytest.raises(SystemExit):
        main(["featurez"])
    assert "invalid choice: 'featurez'" in capsys.readouterr().err.replace('"', "'")
    with pytest.raises(SystemExit):
        main(["features", "--help"])
    assert "usage: moodscope features" in capsys.readouterr().out


def test_hidden_progress_bars_do_not_import_tqdm():
    """Without a terminal (a script, a pipe, a log) the bar is hidden without importing tqdm (20-40 ms
    of every command's start-up), and counts like tqdm's would."""
    code = (
        "import sys; from moodscope.cli.console import progress_bar\n"
        "with progress_bar(total=0, unit='file', desc='x') as bar:\n"
        "    bar.total = 3; bar.update(2 - bar.n); bar.update(); bar.set_description('y'); bar.set_postfix({})\n"
        "print(bar.n, bar.total, 'tqdm' in sys.modules)"
    )
    out = fresh_python(code)
    assert out.split() == ["3", "3", "False"]


def test_feature_cache_honours_moodscope_cache_then_xdg_cache_home(monkeypatch, tmp_path):
    from moodscope.paths import default_cache_dir

    monkeypatch.delenv("MOODSCOPE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "moodscope" / "features"
    args = build_parser().parse_args(["features", "4q", "--root", "x"])
    assert args.out == tmp_path / "xdg" / "moodscope" / "features"
    monkeypatch.setenv("MOODSCOPE_CACHE", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("MOODSCOPE_CACHE")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path.home() / ".cache" / "moodscope" / "features"


def test_training_defaults_come_from_train_config():
    from moodscope.training.config import TrainConfig

    args = build_parser().parse_args(["train", "--model", "hybrid", "--dataset", "4q", "--root", "x"])
    d = TrainConfig()
    assert (args.threads, args.seed, args.epochs, args.patience, args.batch_size, args.lr) == (
        d.threads,
        d.seed,
        d.max_epochs,
        d.patience,
        d.batch_size,
        d.learning_rate,
    )


def test_version(capsys):
    from moodscope.version import __version__

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"moodscope {__version__}"


@pytest.mark.parametrize("argv", [["-v", "models", "-q"], ["models", "-vv"], ["library", "stats", "-q"]])
def test_verbosity_options_after_any_command(argv):
    args = build_parser().parse_args(argv)
    assert args.verbose >= 1 or args.quiet
