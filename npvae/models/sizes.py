"""Sizes refused before anything is allocated: a model's parameters (with what
training keeps beside them) and the rows a call decodes, against this machine's
memory (:func:`npvae._validation.check_fits_in_memory`)."""
from __future__ import annotations

import math

from .._validation import check_fits_in_memory, check_positive_int
from ..params import ParamLayout

#: copies of the parameters that training holds: the parameters, their gradient and
#: Adam's two moments
TRAINING_COPIES = 4


def planned_layout(model, n_features):
    """The parameter layout of ``model`` for ``n_features`` from its settings (validated),
    refused when training could never hold it in memory; nothing is allocated."""
    n_features = check_positive_int(n_features, "n_features")
    model._check_settings()
    layout = ParamLayout(model._param_shapes(n_features))
    check_fits_in_memory(TRAINING_COPIES * layout.size, model._dtype.itemsize,
                         f"the {layout.size:,} parameters of this {type(model).__name__} (with "
                         f"their gradient and optimiser state, in {model._dtype.name})")
    return layout


def check_rows_fit(model, n, what):
    """Refuse ``n`` decoded rows (latents, decoder output, means) that would not fit in
    memory, before anything is drawn or allocated."""
    per_row = (math.prod(model._lik.output_shape(model.n_features_in_)) + model.n_features_in_
               + model._n_features_out)
    check_fits_in_memory(n * per_row, model._dtype.itemsize, what)
