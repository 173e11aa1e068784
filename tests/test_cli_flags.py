"""Every flag is range-checked at parse time (argparse's one-line error, exit 2),
names its real default in --help, and ``npvae --help`` stays light."""
import argparse
import subprocess
import sys

import pytest

from npvae.cli import build_parser, main
from npvae.cli.parser import LIKELIHOODS, explicit_flags

BAD = [
    ("train", "--max-examples", "0"), ("train", "--max-examples", "-5"),
    ("train", "--threads", "0"), ("train", "--threads", "two"),
    ("train", "--validation-size", "1.5"), ("train", "--validation-size", "-1"),
    ("train", "--validation-size", "nan"), ("train", "--validation-size", "x"),
    ("train", "--kl-warmup", "nan"), ("train", "--kl-warmup", "-1"),
    ("train", "--lr", "0"), ("train", "--lr", "-1e-3"), ("train", "--lr", "nan"),
    ("train", "--lr", "inf"), ("train", "--batch-size", "0"), ("train", "--batch-size", "-3"),
    ("train", "--epochs", "-1"), ("train", "--epochs", "2.5"), ("train", "--clip-norm", "0"),
    ("train", "--clip-norm", "-1"), ("train", "--k", "0"), ("train", "--samples", "0"),
    ("train", "--beta", "-1"), ("train", "--beta", "inf"), ("train", "--lr-decay", "0"),
    ("train", "--patience", "0"), ("train", "--seed", "-1"), ("train", "--latent", "0"),
    ("train", "--latent", ""), ("train", "--latent", "2,-1"), ("train", "--hidden", "8,0"),
    ("train", "--hidden", "a"), ("train", "--gaussian-logvar", "nan"),
    ("train", "--gaussian-variance", "learned"), ("train", "--likelihood", "poisson"),
    ("evaluate", "--n-importance", "-1"), ("evaluate", "--max-examples", "0"),
    ("evaluate", "--threads", "-2"), ("evaluate", "--seed", "-1"),
    ("sample", "-n", "0"), ("sample", "-n", "-4"), ("sample", "--seed", "x"),
    ("plot", "--threads", "0"),
]


@pytest.mark.parametrize("command, flag, value", BAD)
def test_a_bad_value_is_argparses_one_line_error(command, flag, value, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, flag, value, "--out", "nowhere"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"npvae {command}: error: argument ") and flag in last, last


GOOD = [("--validation-size", "0.2", 0.2), ("--validation-size", "500", 500),
        ("--validation-size", "0", 0), ("--epochs", "0", 0), ("--kl-warmup", "0", 0.0),
        ("--clip-norm", "5", 5.0), ("--hidden", "", ()), ("--hidden", "16;8", ((16,), (8,))),
        ("--latent", "3,2", (3, 2)), ("--gaussian-logvar", "-2.5", -2.5)]


@pytest.mark.parametrize("flag, text, value", GOOD)
def test_good_values_parse(flag, text, value):
    args = build_parser().parse_args(["train", flag, text])
    assert getattr(args, flag[2:].replace("-", "_")) == value


def _subparsers():
    parser = build_parser()
    (action,) = parser._subparsers._group_actions
    return action.choices


def test_no_numeric_flag_without_a_range_check():
    """The class of failure: a numeric flag parsed by bare int/float accepts 0, -1, nan."""
    for name, sub in _subparsers().items():
        for action in sub._actions:
            if action.option_strings == ["--label"]:
                continue                  # a class label: the model checks it
            assert action.type not in (int, float), (name, action.option_strings)


def test_every_flag_states_its_real_default(capsys):
    for name, sub in _subparsers().items():
        text = sub.format_help()
        assert "(default: None)" not in text, name
        formatter = sub._get_formatter()
        for action in sub._actions:
            if isinstance(action, (argparse._HelpAction, argparse._StoreTrueAction)):
                continue
            if not action.option_strings or action.required:    # nothing to default to
                continue
            help_text = formatter._get_help_string(action)
            assert "default" in help_text, (name, action.option_strings, help_text)


def test_likelihood_choices():
    assert LIKELIHOODS == ("bernoulli", "gaussian", "categorical", "beta")
    assert build_parser().parse_args(["train", "--likelihood", "beta"]).likelihood == "beta"


def test_explicit_flags_are_those_typed():
    assert explicit_flags(["train", "--lr", "0.001", "--quiet", "--out", "x"]) == \
        {"lr", "quiet", "out"}
    assert explicit_flags(["evaluate", "--out", "x"]) == {"out"}


def test_resume_and_overwrite_exclude_each_other(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--resume", "--overwrite", "--out", "x"])
    assert exit_.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_help_imports_neither_numba_nor_matplotlib_nor_the_models():
    code = ("import sys\nimport npvae\n"
            "lazy = 'npvae.models' not in sys.modules   # the package imports them on use\n"
            "from npvae.cli import main\n"
            "for cmd in ([], ['train'], ['evaluate'], ['sample'], ['plot']):\n"
            "    try:\n        main(cmd + ['--help'])\n    except SystemExit:\n        pass\n"
            "heavy = ['numba', 'matplotlib', 'npvae.plots']\n"
            "heavy += ['npvae.models', 'npvae.training'] if lazy else []\n"
            "print('HEAVY', [m for m in heavy if m in sys.modules])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "HEAVY []" in r.stdout, r.stdout
