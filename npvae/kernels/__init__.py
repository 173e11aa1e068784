"""Pure kernels: ``*_forward(...) -> (out, cache)`` and ``*_backward(dout, cache) -> grads``.

Where to add things:

* a new activation: :mod:`npvae.kernels.activations` (NumPy reference) and
  :mod:`npvae.kernels._numba` (``_act``/``_dact``), one code each;
* a new layer kernel: a ``*_forward``/``*_backward`` pair in a module here;
* a new likelihood kernel: :mod:`npvae.kernels.likelihoods`, then a class in
  :mod:`npvae.likelihoods` that the models use.
"""
from .activations import (ACTIVATIONS, activation_backward, activation_forward,
                          bias_activation_backward, bias_activation_forward)
from .dense import (dense_backward, dense_forward, glorot_uniform, he_normal, init_weight,
                    mlp_backward, mlp_forward)
from .gaussian import (kl_diagonal_backward, kl_diagonal_forward, kl_standard_normal_backward,
                       kl_standard_normal_forward, log_normal_backward, log_normal_forward,
                       log_q_backward, log_q_forward, reparameterize_backward,
                       reparameterize_forward)
from .likelihoods import (bernoulli_backward, bernoulli_forward, categorical_backward,
                          categorical_forward, gaussian_backward, gaussian_forward)

__all__ = [name for name in dir() if not name.startswith("_")]
