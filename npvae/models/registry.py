"""The model classes by name, and :func:`load`, which rebuilds the model a checkpoint
names.

Every subclass of :class:`~npvae.models.base.BaseVAE` registers itself here when it
is defined (``__init_subclass__``), a user's subclass included.  The registry lives
beside the models so that imports flow one way: the models import
:mod:`npvae.checkpoint` (the file format), which imports no model.  Importing this
module runs ``npvae/models/__init__.py`` first, so the package's own models are
registered before :func:`load` looks one up.
"""
from __future__ import annotations

from .. import checkpoint

#: model classes by class name, as checkpoints store them
MODELS = {}


def register_model(cls):
    """Make ``cls`` loadable from checkpoints that name it; returns ``cls``."""
    MODELS[cls.__name__] = cls
    return cls


def load(path):
    """Rebuild the model saved at ``path`` by :func:`npvae.save` (parameters, optimiser
    and RNG state, history); every field is checked first (:func:`npvae.checkpoint.build`)."""
    return checkpoint.build(path, MODELS)
