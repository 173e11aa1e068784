"""Minibatch training of npvae models (MATH §5, §11).  Placeholder loop; grows in issue 3."""
from __future__ import annotations

import numpy as np

from .optim import clip_grad_norm, make_optimizer


def train(model, X, epochs=10, batch_size=100, learning_rate=1e-3, clip_norm=None):
    """Plain minibatch training; returns the model."""
    rng = model.rng_
    opt = make_optimizer(model.optimizer, learning_rate)
    if model.optimizer_state_ is None:
        model.optimizer_state_ = opt.init_state(model.layout_.size, model._dtype)
    N = X.shape[0]
    for epoch in range(epochs):
        order = rng.permutation(N)
        total = 0.0
        for start in range(0, N, batch_size):
            xb = model._lik.convert(X[order[start:start + batch_size]], model._dtype)
            eps = model._draw(rng, model._noise_shape(model.n_samples, xb.shape[0]))
            loss, g, _ = model._objective(xb, eps, model.beta, need_grads=True)
            g, _ = clip_grad_norm(g, clip_norm)
            opt.step(model.flat_params_, g, model.optimizer_state_)
            total += loss * xb.shape[0]
        model.n_iter_ += 1
        model.history_.append({"epoch": model.n_iter_, "train_loss": total / N})
    return model
