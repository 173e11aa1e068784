"""The decoder's starting output bias from the training data
(docs/01-dense-layers.md; Burda et al. 2016)."""
from __future__ import annotations

import numpy as np


def start_output_bias(model, X, transform):
    """Decoder output bias from the data; with a ``batch_transform`` (e.g. binarisation)
    from transformed examples (the first 10,000), checked against the likelihood."""
    if transform is None:
        model._lik.check_data(X)
        sample = X
    else:
        sample = transform(X[:10000], np.random.default_rng(0))
        model._lik.check_data(sample, name="the transformed X")
    model._set_output_bias(sample)
