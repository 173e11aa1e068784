"""The models: each composes the networks of :mod:`.networks`, the posteriors and
likelihoods of :mod:`npvae.distributions` and the objectives of
:mod:`npvae.objectives`; :mod:`.base` holds what they share, :mod:`.registry` finds
them by name for :func:`load`."""
from .conditional import ConditionalVAE
from .fisher import FisherAutoencoder
from .hierarchical import HierarchicalVAE
from .ladder import LadderVAE
from .registry import load
from .vae import VAE

__all__ = ["VAE", "HierarchicalVAE", "ConditionalVAE", "FisherAutoencoder", "LadderVAE", "load"]
