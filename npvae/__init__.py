"""npvae: variational autoencoders in NumPy with hand-written gradients.

The mathematics, derived step by step, is the book in ``docs/`` (start at
docs/README.md); every formula in the code links the section that derives it.

Layout, in the order the mathematics builds up:

* :mod:`npvae.layers` — dense layers and activations;
* :mod:`npvae.distributions` — Gaussians (posteriors, KLs), likelihoods,
  reparameterisable samplers;
* :mod:`npvae.objectives` — the ELBO, the IWAE bound, the log-likelihood estimate;
* :mod:`npvae.models` — :class:`VAE`, :class:`HierarchicalVAE`, :class:`ConditionalVAE`;
* :mod:`npvae.optim`, :mod:`npvae.training`, :mod:`npvae.checkpoint`;
* :mod:`npvae.data`, :mod:`npvae.plots`, :mod:`npvae.cli`.
"""
from ._blas import select_openblas_kernels

select_openblas_kernels()  # before NumPy loads OpenBLAS; see npvae/_blas.py

from .backend import get_backend, set_backend, set_num_threads, use_backend  # noqa: E402
from .checkpoint import load, save  # noqa: E402
from .models import ConditionalVAE, HierarchicalVAE, VAE  # noqa: E402

__version__ = "0.1.0"
__all__ = ["VAE", "HierarchicalVAE", "ConditionalVAE", "load", "save", "get_backend",
           "set_backend", "set_num_threads", "use_backend"]
