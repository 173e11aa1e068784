"""npvae: variational autoencoders in NumPy with hand-written gradients.

The mathematics, derived step by step, is the book in ``docs/`` (start at
docs/README.md); every formula in the code links the section that derives it.

Importing npvae changes nothing in the process's environment.  Two settings
are made where they take effect, and never override a value the user set:
``OMP_WAIT_POLICY=PASSIVE`` when the compiled kernels are first loaded
(:mod:`npvae.backend`), and ``OPENBLAS_CORETYPE`` by the ``npvae`` command and
the benchmarks before NumPy loads (:mod:`npvae._blas`).

Layout, in the order the mathematics builds up:

* :mod:`npvae.layers` — dense layers and activations;
* :mod:`npvae.distributions` — Gaussians (posteriors, KLs), likelihoods,
  reparameterisable samplers;
* :mod:`npvae.objectives` — the ELBO, the IWAE bound, the log-likelihood estimate;
* :mod:`npvae.models` — :class:`VAE`, :class:`HierarchicalVAE`, :class:`ConditionalVAE`,
  :class:`FisherAutoencoder`, :class:`LadderVAE`;
* :mod:`npvae.optim`, :mod:`npvae.training`, :mod:`npvae.checkpoint`;
* :mod:`npvae.data`, :mod:`npvae.plots`, :mod:`npvae.cli`.
"""
import importlib

from .backend import get_backend, set_backend, set_num_threads, use_backend

__version__ = "0.1.0"
__all__ = ["VAE", "HierarchicalVAE", "ConditionalVAE", "FisherAutoencoder", "LadderVAE", "load",
           "save", "get_backend", "set_backend", "set_num_threads", "use_backend"]

#: names imported on first use: ``import npvae`` stays fast (the models bring
#: scikit-learn, the kernels Numba), ``npvae.VAE`` imports what it needs
_LAZY = {"VAE": "npvae.models", "HierarchicalVAE": "npvae.models",
         "ConditionalVAE": "npvae.models", "FisherAutoencoder": "npvae.models",
         "LadderVAE": "npvae.models",
         "load": "npvae.models", "save": "npvae.checkpoint"}


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'npvae' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
