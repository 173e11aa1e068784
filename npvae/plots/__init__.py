"""Figures for VAE experiments.

Reconstructions, samples from the prior, training curves, latent scatter
plots, the decoded latent manifold (Kingma & Welling 2014, fig. 4, when the
latent is 2-D; a 2-D slice of it otherwise) and latent-space interpolations.

This package deliberately knows nothing about the model classes: every function
takes NumPy arrays, plain dictionaries or a ``decode`` callable, so it can be
used (and tested) on its own.

Figures are built as :class:`matplotlib.figure.Figure` objects drawn by the Agg
canvas, never through ``matplotlib.pyplot``: there is no global figure state,
no window is ever opened, and separate threads can draw separate figures at
the same time. Every ``plot_*`` function writes one PNG file at the requested
``dpi`` (creating the output folder when it is missing), releases its figure
and returns the path it wrote as a :class:`pathlib.Path`. Layout uses
matplotlib's constrained layout, the layout engine that (unlike
``tight_layout``) also fits colour bars and fixed-aspect images tightly.

Images are greyscale with pixel values in ``[0, 1]`` (Bernoulli means or
intensities; docs/04-likelihoods.md and docs/12-data.md); values outside that
range are clipped by the colour map, not rejected.

Modules, one kind of figure each; imports flow one way,
``_canvas`` <- ``images`` <- ``manifold``, ``_canvas`` <- ``curves``, ``latent``:

* :mod:`._canvas`: argument checks, figure creation and saving, image helpers,
  colour bars (private);
* :mod:`.images`: :func:`image_grid`, :func:`plot_reconstructions`,
  :func:`plot_samples`;
* :mod:`.curves`: :func:`plot_training_curves`;
* :mod:`.latent`: :func:`latent_projection`, :func:`plot_latent_scatter`,
  :func:`plot_latent_levels` (one panel per level of a hierarchical model);
* :mod:`.manifold`: :func:`plot_manifold` (titled by :func:`manifold_title`),
  :func:`plot_interpolation`.

Shape legend (docs/README.md): ``N`` batch, ``D`` data dimension, ``Z`` latent
dimension. Also used here: ``H, W`` image height and width (``D = H * W``),
``P`` pairs of interpolation end points, ``T`` interpolation steps and ``M``
points passed to a ``decode`` callable in one call.
"""

from ._canvas import DEFAULT_DPI, SEPARATOR_VALUE
from .curves import plot_training_curves
from .images import image_grid, plot_reconstructions, plot_samples
from .latent import latent_projection, plot_latent_levels, plot_latent_scatter
from .manifold import manifold_title, plot_interpolation, plot_manifold

__all__ = [
    "image_grid",
    "latent_projection",
    "plot_reconstructions",
    "plot_samples",
    "plot_training_curves",
    "plot_latent_scatter",
    "plot_latent_levels",
    "plot_manifold",
    "manifold_title",
    "plot_interpolation",
    "DEFAULT_DPI",
    "SEPARATOR_VALUE",
]
