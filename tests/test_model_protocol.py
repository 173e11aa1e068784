"""The trainer's contract with a model (issue 27): ``training.py`` and
``gradient_estimators.py`` use a model only through
:class:`npvae.models.protocol.TrainableModel`, and every model implements it under
its public names (an override left under an old private name would silently stop
being called)."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import npvae
from npvae import training
from npvae.models.protocol import TrainableModel
from npvae.models.registry import MODELS

ROOT = Path(__file__).resolve().parent.parent

#: the private hooks of before issue 27, by their public names now
OLD_HOOKS = {"_objective": "training_objective", "_noise_shape": "noise_shape",
             "_log_weights_forward": "log_weights_forward",
             "_log_weights_backward": "log_weights_backward", "_after_step": "after_step",
             "_selection": "validation_criterion", "_n_condition": "n_condition",
             "_condition": "labels_to_condition", "_check_fitted": "check_fitted",
             "_check_X": "validate_input"}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_no_model_class_defines_an_old_private_hook(name):
    for cls in MODELS[name].__mro__:
        stale = sorted(set(vars(cls)) & set(OLD_HOOKS))
        assert not stale, (f"{cls.__name__} defines {stale}: the trainer calls "
                           f"{[OLD_HOOKS[s] for s in stale]} now")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_implements_the_contract(name):
    cls = MODELS[name]
    assert issubclass(cls, TrainableModel)
    assert not cls.__abstractmethods__, f"{name} lacks {sorted(cls.__abstractmethods__)}"


def _private_uses(path):
    """``line: text`` of every ``x._name`` attribute (``self`` aside, dunders aside) and
    every ``getattr(x, "_name"…)`` in a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "np"))):
            found.append(f"{node.lineno}: {ast.unparse(node)}")
        elif (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "getattr"
              and len(node.args) > 1 and isinstance(node.args[1], ast.Constant)
              and str(node.args[1].value).startswith("_")):
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_the_scan_sees_private_attributes_and_probes(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("def f(model):\n    model._dtype\n    getattr(model, '_x', None)\n"
                    "    model.dtype_\n    self._y\n", encoding="utf-8")
    assert _private_uses(path) == ["2: model._dtype", "3: getattr(model, '_x', None)"]


@pytest.mark.parametrize("module", ["training.py", "gradient_estimators.py"])
def test_the_trainer_uses_no_private_member_of_a_model(module):
    found = _private_uses(ROOT / "npvae" / module)
    assert not found, f"npvae/{module} reaches into private members:\n" + "\n".join(found)


def test_training_calls_a_models_after_step_hook():
    calls = []

    class Counted(npvae.VAE):
        def after_step(self):
            calls.append(self.n_iter_)

    X = (np.random.default_rng(0).random((30, 6)) > 0.5).astype(float)
    m = Counted(n_latent=2, hidden_sizes=(4,), epochs=2, batch_size=10, random_state=0).fit(X)
    assert len(calls) == 6 and m.n_iter_ == 2


def test_the_fisher_autoencoder_selects_by_its_own_loss():
    assert training.selection(npvae.VAE()) == ("elbo", 1)
    assert training.selection(npvae.VAE(objective="iwae", k=2)) == ("iwae", 1)
    assert training.selection(npvae.FisherAutoencoder()) == ("fisher", -1)


def test_models_take_their_kls_through_the_posterior_contract():
    """No model imports a KL kernel: each KL goes through its ``Posterior``
    (``kl_forward``, ``kl_to_gaussian_forward``), so a new posterior family needs no
    change in the models (issue 27; the ladder VAE imported ``kl_diagonal_*``)."""
    found = []
    for path in sorted((ROOT / "npvae" / "models").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and "distributions" in (node.module or ""):
                found += [f"{path.name}: {a.name}" for a in node.names if a.name.startswith("kl_")]
    assert not found, found
