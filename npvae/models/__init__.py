"""The models: each composes the networks of :mod:`.networks`, the posteriors and
likelihoods of :mod:`npvae.distributions` and the objectives of
:mod:`npvae.objectives`; :mod:`.base` holds what they share."""
from .conditional import ConditionalVAE
from .fisher import FisherAutoencoder
from .hierarchical import HierarchicalVAE
from .vae import VAE

__all__ = ["VAE", "HierarchicalVAE", "ConditionalVAE", "FisherAutoencoder"]
