"""The Fisher autoencoder (docs/14-fisher-autoencoder.md; after Elkhalil, Hasan,
Ding, Farsiu & Tarokh, "Fisher Auto-Encoders", AISTATS 2021).

The model is the VAE's — encoder ``q(z|x) = N(μ(x), diag e^{λ(x)})``, Gaussian
decoder ``p(x|z) = N(g(z), σ² I)`` with a fixed ``σ² = e^{decoder_logvar}``, prior
``N(0, I)`` — trained on the Fisher divergence between the joint densities
``p(x, z) = p(z) p(x|z)`` and ``q(x, z) = p_data(x) q(z|x)`` instead of the
ELBO.  Made tractable (docs/14-fisher-autoencoder.md#a-tractable-objective),
per sample ``z = μ + e^{λ/2} ⊙ ε``:

    ℓ = ‖∇_z log p(x|z) − z − ∇_z log q(z|x)‖² + ‖x − g(z)‖²/σ⁴
        + ‖∇_x log q(z|x)‖² − 2D/σ²,

the loss is its mean, and ``loss + E‖∇ log p_data‖²`` is the Fisher divergence.
The scores are input-gradients of the networks
(:mod:`npvae.layers.input_gradient`), so the gradient of the loss needs the
second-order backward pass written there.  Scoring, importance-sampled
``log_likelihood``, ``transform``, ``sample`` and checkpoints are the VAE's.

Shape legend: ``N`` batch, ``D`` data dimension, ``Z`` latent dimension, ``S``
samples of ``z`` per example, ``R = S·N`` rows.
"""
from __future__ import annotations

import numpy as np

from .._validation import check_number
from ..layers.input_gradient import (input_gradient_backward, input_gradient_forward,
                                     mlp_jet_backward, mlp_jet_forward)
from .vae import VAE

#: activations with a second derivative (the loss's gradient differentiates ``f'``)
SMOOTH_ACTIVATIONS = ("tanh", "softplus", "sigmoid", "identity")


class FisherAutoencoder(VAE):
    """Fisher autoencoder with hand-written second-order gradients
    (docs/14-fisher-autoencoder.md).

    Parameters
    ----------
    n_latent : int
        Latent dimension ``Z``.
    hidden_sizes : tuple of int
        Widths of the encoder's hidden layers.
    decoder_hidden_sizes : tuple of int or None
        Widths of the decoder's hidden layers; ``None`` mirrors the encoder.
    activation : ``"tanh"``, ``"softplus"``, ``"sigmoid"`` or ``"identity"`` — a smooth
        activation: the gradient of the loss needs ``f''``.
    decoder_logvar : float
        ``log σ²`` of the Gaussian decoder ``p(x|z) = N(g(z), σ² I)`` (fixed).
    n_samples : int
        ``S``, samples of ``z`` per example in the loss.
    optimizer, learning_rate, batch_size, epochs : training defaults for ``fit``.
    dtype : ``"float32"`` or ``"float64"``.
    random_state : int, Generator or None

    Attributes
    ----------
    params_ : dict name -> ndarray (the VAE's names: ``enc_W{i}``, ``enc_mu_W``,
        ``enc_logvar_W``, ``dec_W{i}``, ``dec_out_W`` and biases).
    history_ : per-epoch dicts; ``train_fisher`` is the loss, ``train_elbo`` the ELBO
        of the same model (monitored, not optimised).
    """

    #: fixed choices of the VAE's settings (not constructor parameters)
    likelihood = "gaussian"
    posterior = "diagonal"
    beta = 1.0
    objective = "elbo"
    k = 1
    gradient_estimator = "standard"     # the Fisher loss has its own gradient (no ELBO estimator)
    #: what decides the best epoch in training: the validation Fisher loss, lower is better
    validation_criterion = ("fisher", -1)

    def __init__(self, n_latent=20, hidden_sizes=(200,), decoder_hidden_sizes=None,
                 activation="tanh", decoder_logvar=0.0, n_samples=1, optimizer="adam",
                 learning_rate=1e-3, batch_size=100, epochs=10, dtype="float64",
                 random_state=None):
        self._keep_settings(locals())        # scikit-learn: each argument as given

    @property
    def likelihood_params(self):
        """The decoder ``N(g(z), e^{decoder_logvar} I)``: a Gaussian with fixed variance."""
        return {"variance": "fixed", "logvar": self.decoder_logvar}

    def _build(self):
        check_number(self.decoder_logvar, "decoder_logvar", minimum=-np.inf)
        if self.activation not in SMOOTH_ACTIVATIONS:
            raise ValueError(f"FisherAutoencoder needs a smooth activation (its gradient uses "
                             f"f''), one of {SMOOTH_ACTIVATIONS}; got {self.activation!r}")
        super()._build()

    # ------------------------------------------------------------ networks
    def _encoder_layers(self):
        """The encoder as one MLP ``x -> (μ, λ)``: hidden layers, then both heads side by
        side, ``W (H, 2Z)`` (a copy of ``enc_mu_W | enc_logvar_W``)."""
        P, n = self.params_, len(self._enc_sizes())
        layers = [(P[f"enc_W{i}"], P[f"enc_b{i}"]) for i in range(n)]
        layers.append((np.concatenate([P["enc_mu_W"], P["enc_logvar_W"]], axis=1),
                       np.concatenate([P["enc_mu_b"], P["enc_logvar_b"]])))
        return layers, [self.activation] * n + ["identity"]

    def _decoder_layers(self):
        P, n = self.params_, len(self._dec_sizes())
        layers = [(P[f"dec_W{i}"], P[f"dec_b{i}"]) for i in range(n)]
        layers.append((P["dec_out_W"], P["dec_out_b"]))
        return layers, [self.activation] * n + ["identity"]

    # ------------------------------------------------------------ objective
    def training_objective(self, X, eps, beta=1.0, need_grads=True, condition=None):
        """The Fisher loss (``beta`` and ``condition`` are unused); returns
        ``(loss, flat_grad or None, terms)``."""
        return self._fisher_objective(X, eps, need_grads)

    def loss_and_grads(self, X, eps, check_input=True):
        """The Fisher loss ``mean ℓ`` (docs/14-fisher-autoencoder.md#a-tractable-objective)
        and its gradient (docs/14-fisher-autoencoder.md#the-gradient-of-the-loss).

        ``X (N, D)``; ``eps (S, N, Z)`` standard normal noise; with it fixed the loss
        is a deterministic function of ``params_``.  Returns ``(loss, grads)``,
        ``grads`` a dict with the keys and shapes of ``params_``.
        """
        return super().loss_and_grads(X, eps, check_input)

    def _fisher_objective(self, X, eps, need_grads=True):
        """Forward and hand-written backward of the Fisher loss
        (docs/14-fisher-autoencoder.md#the-gradient-of-the-loss).

        ``terms`` holds per example ``(N,)``: ``fisher`` (ℓ averaged over samples),
        and the ELBO's ``reconstruction``, ``kl``, ``elbo`` of the same draws.
        """
        S, N, Z = eps.shape
        D, R = X.shape[1], S * N
        inv_var = float(np.exp(-self.decoder_logvar))                      # 1/σ²
        x = np.broadcast_to(X, (S, N, D)).reshape(R, D)                    # (R, D)
        e = eps.reshape(R, Z)                                              # (R, Z)
        enc_layers, enc_acts = self._encoder_layers()
        dec_layers, dec_acts = self._decoder_layers()
        y_e, enc_c = mlp_jet_forward(x, enc_layers, enc_acts)              # (R, 2Z)
        mu, lam = y_e[:, :Z], y_e[:, Z:]                                   # (R, Z)
        sd = np.exp(0.5 * lam)                                             # σ_q (R, Z)
        e_isd = e / sd                                                     # ε/σ_q (R, Z)
        z = mu + sd * e                                                    # (R, Z)
        g, dec_c = mlp_jet_forward(z, dec_layers, dec_acts)                # (R, D)
        diff = x - g                                                       # (R, D)
        score_pz, dec_ig = input_gradient_forward(diff * inv_var, dec_c)   # ∇_z log p(x|z) (R, Z)
        # ∇_z log q(z|x) = −(z − μ)/σ_q² = −ε/σ_q, so  ρ = ∇_z log p(x|z) − z − ∇_z log q(z|x)
        rho = score_pz - z + e_isd                                         # (R, Z)
        seeds = np.concatenate([e_isd, 0.5 * (e * e - 1)], axis=1)         # ∂log q/∂(μ, λ) (R, 2Z)
        score_qx, enc_ig = input_gradient_forward(seeds, enc_c)            # ∇_x log q(z|x) (R, D)
        per_row = ((rho * rho).sum(axis=1) + (diff * diff).sum(axis=1) * inv_var ** 2
                   + (score_qx * score_qx).sum(axis=1) - 2.0 * D * inv_var)   # ℓ (R,)
        fisher = per_row.reshape(S, N).mean(axis=0)                        # (N,)
        loss = float(fisher.mean())
        terms = self._elbo_parts(X, g.reshape(S, N, D), mu[:N], lam[:N])
        terms["fisher"] = fisher
        if not need_grads:
            return loss, None, terms

        # backward from ∂loss/∂ℓ_r = 1/R
        c = 1.0 / R
        drho = 2.0 * c * rho                                               # (R, Z)
        dz = -drho                                                         # via −z
        dlam = drho * e_isd * -0.5                                         # via ε e^{−λ/2}
        dg = -2.0 * c * inv_var ** 2 * diff                                # via ‖x − g‖²/σ⁴ (R, D)
        dseeds, enc_extra, enc_dW = input_gradient_backward(2.0 * c * score_qx, enc_ig)
        dlam += dseeds[:, :Z] * e_isd * -0.5                               # seeds' ε e^{−λ/2}
        dv, dec_extra, dec_dW = input_gradient_backward(drho, dec_ig)      # v = (x − g)/σ²
        dg -= dv * inv_var
        du, dec_grads = mlp_jet_backward(dg, dec_c, dec_extra, need_du=True)
        dz += du                                                           # (R, Z)
        dmu = dz                                                           # z = μ + σ_q ε
        dlam += dz * 0.5 * sd * e
        _, enc_grads = mlp_jet_backward(np.concatenate([dmu, dlam], axis=1), enc_c,
                                        enc_extra, need_du=False)
        flat, G = self._grad_buffer()
        self._write_grads(G, "enc", enc_grads, enc_dW, Z)
        self._write_grads(G, "dec", dec_grads, dec_dW, Z)
        return loss, flat, terms

    @staticmethod
    def _write_grads(G, prefix, grads, dW_extra, Z):
        """``dW_i + W̄_i`` and ``db_i`` into the gradient views; the encoder's last layer
        splits back into its ``μ`` and ``λ`` heads."""
        n = len(grads) - 1
        for i, ((dW, db), extra) in enumerate(zip(grads, dW_extra)):
            dW = dW + extra
            if i < n:
                G[f"{prefix}_W{i}"][...], G[f"{prefix}_b{i}"][...] = dW, db
            elif prefix == "dec":
                G["dec_out_W"][...], G["dec_out_b"][...] = dW, db
            else:
                G["enc_mu_W"][...], G["enc_mu_b"][...] = dW[:, :Z], db[:Z]
                G["enc_logvar_W"][...], G["enc_logvar_b"][...] = dW[:, Z:], db[Z:]

    def _elbo_parts(self, X, mean, mu, lam):
        """The ELBO of the same model and draws, for monitoring (docs/05-elbo.md):
        ``reconstruction``, ``kl``, ``elbo`` per example ``(N,)``."""
        log_px = self._lik.log_prob_forward(mean, X, self.params_)[0]      # (S, N)
        kl = self._post.kl_forward(mu, lam)[0]                             # (N,)
        rec = log_px.mean(axis=0)
        return {"reconstruction": rec, "kl": kl, "elbo": rec - kl}
