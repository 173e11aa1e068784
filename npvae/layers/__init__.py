"""Deterministic layers (docs/01-dense-layers.md): pure kernels
``*_forward(...) -> (out, cache)`` and ``*_backward(dout, cache) -> grads``.

* :mod:`.activations`: the activations and the fused bias + activation kernel
  (NumPy reference); :mod:`.activations_numba` its compiled twin.  A new
  activation is one entry in each.
* :mod:`.dense`: the dense layer, the MLP that stacks them, initialisers.
"""
from .activations import (ACTIVATIONS, activation_backward, activation_forward,
                          bias_activation_backward, bias_activation_forward, check_activation)
from .dense import (dense_backward, dense_forward, glorot_uniform, he_normal, init_weight,
                    mlp_backward, mlp_forward)

__all__ = ["ACTIVATIONS", "activation_backward", "activation_forward",
           "bias_activation_backward", "bias_activation_forward", "check_activation",
           "dense_backward", "dense_forward", "glorot_uniform", "he_normal", "init_weight",
           "mlp_backward", "mlp_forward"]
