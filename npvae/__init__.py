"""npvae: variational autoencoders in NumPy with hand-written gradients.

The mathematics is specified in MATH.md (kept beside the repository in
``shared/MATH.md``); every function names the section it implements.
"""
from ._blas import select_openblas_kernels

select_openblas_kernels()  # before NumPy loads OpenBLAS; see npvae/_blas.py

from .backend import get_backend, set_backend, set_num_threads, use_backend
from .checkpoint import load, save
from .conditional import ConditionalVAE
from .hierarchical import HierarchicalVAE
from .vae import VAE

__version__ = "0.1.0"
__all__ = ["VAE", "HierarchicalVAE", "ConditionalVAE", "load", "save", "get_backend", "set_backend", "set_num_threads", "use_backend"]
