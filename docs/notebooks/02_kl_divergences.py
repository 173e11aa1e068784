# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Notebook 2: KL divergences in closed form
#
# Companion to [chapter 3](../03-kl-divergences.md). With npvae's own kernels it
# checks each closed-form KL three ways:
#
# 1. against a Monte Carlo estimate $\frac1S \sum_s (\log q(z_s) - \log p(z_s))$,
#    on samples $z_s$ drawn by the reparameterisation kernels;
# 2. against scipy: numerical integration per coordinate for the diagonal KLs;
#    for the full covariance, scipy's Gaussian entropy and log-density on
#    $\Sigma = L L^\top$ assembled and factorised independently;
# 3. every gradient against centred finite differences in float64, the
#    full-covariance KL through the packed vector $(s, \text{off-diagonal})$
#    that the encoder outputs.
#
# Run it from the repository root: `python docs/notebooks/02_kl_divergences.py`.

# %%
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import integrate, linalg, stats  # noqa: E402

import npvae  # noqa: E402
from npvae.distributions.full_gaussian import (  # noqa: E402
    cholesky_from_vector_backward,
    cholesky_from_vector_forward,
    kl_full_standard_normal_backward,
    kl_full_standard_normal_forward,
    log_diagonal,
    log_q_full_backward,
    log_q_full_forward,
    n_cholesky_entries,
    reparameterize_full_backward,
    reparameterize_full_forward,
)
from npvae.distributions.diagonal_gaussian import (  # noqa: E402
    kl_diagonal_backward,
    kl_diagonal_forward,
    kl_standard_normal_backward,
    kl_standard_normal_forward,
    log_normal_forward,
    log_q_forward,
    reparameterize_forward,
)
from npvae.gradcheck import numerical_gradient, relative_error  # noqa: E402

try:
    HERE = Path(__file__).resolve().parent
except NameError:  # inside Jupyter, run from docs/notebooks
    HERE = Path.cwd()
FIGURES = HERE.parent / "figures" / "notebooks"
FIGURES.mkdir(parents=True, exist_ok=True)
STEM = "02_kl_divergences"

T0 = time.perf_counter()
rng = np.random.default_rng(0)
BACKENDS = ("numpy", "numba")   # the NumPy reference and the compiled twins
TOL = 1e-7                       # relative error allowed between a backward pass and centred differences
S_MC = 200_000                   # Monte Carlo samples per example
N, Z = 3, 4

# %% [markdown]
# ## 1. Diagonal posterior against the standard normal
#
# Closed form $\frac12 \sum_j (\mu_j^2 + \sigma_j^2 - 1 - \lambda_j)$. Monte
# Carlo: $z = \mu + \sigma \odot \varepsilon$ by `reparameterize_forward`,
# $\log q$ by `log_q_forward` (the change of variables of chapter 2), and
# $\log p$ by `log_normal_forward` with $\mu = \lambda = 0$.


# %%
def quad_kl_1d(mq, lq, mp, lp):
    """KL(N(mq, e^lq) || N(mp, e^lp)) by scipy's adaptive quadrature."""
    sq, sp = np.exp(lq / 2), np.exp(lp / 2)

    def integrand(t):
        return stats.norm.pdf(t, mq, sq) * (stats.norm.logpdf(t, mq, sq) - stats.norm.logpdf(t, mp, sp))

    return integrate.quad(integrand, mq - 14 * sq, mq + 14 * sq, epsabs=1e-13, epsrel=1e-12)[0]


def mc_summary(log_ratio):
    """Mean and standard error over the sample axis 0, and the running mean of column 0."""
    mean = log_ratio.mean(axis=0)
    se = log_ratio.std(axis=0, ddof=1) / np.sqrt(len(log_ratio))
    return mean, se


def report(name, closed, reference, mc, se):
    print(f"{name}")
    print(f"  {'example':>7s} {'closed form':>12s} {'scipy':>12s} {'|diff|':>8s} {'Monte Carlo':>12s} "
          f"{'(MC - closed)/SE':>17s}")
    for n in range(len(closed)):
        print(f"  {n:7d} {closed[n]:12.8f} {reference[n]:12.8f} {abs(closed[n] - reference[n]):8.1e} "
              f"{mc[n]:12.5f} {(mc[n] - closed[n]) / se[n]:17.2f}")
    assert np.allclose(closed, reference, rtol=1e-9, atol=1e-10), name
    assert np.all(np.abs(mc - closed) < 4 * se), name


mu = rng.standard_normal((N, Z)) * 0.8
logvar = rng.uniform(-1.5, 1.0, (N, Z))
eps = rng.standard_normal((S_MC, N, Z))

kl_std, _ = kl_standard_normal_forward(mu, logvar)
kl_quad = np.array([sum(quad_kl_1d(mu[n, j], logvar[n, j], 0.0, 0.0) for j in range(Z)) for n in range(N)])
z, _ = reparameterize_forward(mu, logvar, eps)
log_q, _ = log_q_forward(logvar, eps)
log_p, _ = log_normal_forward(z, np.zeros(Z), np.zeros(Z))
ratio_std = log_q - log_p                                      # (S, N)
report("KL(N(mu, diag e^lambda) || N(0, I))", kl_std, kl_quad, *mc_summary(ratio_std))

# %% [markdown]
# ## 2. Between two diagonal Gaussians
#
# Same samples from $q$; now $\log p$ is `log_normal_forward` at $(\mu^p, \lambda^p)$.

# %%
mu_p = rng.standard_normal((N, Z)) * 0.8
logvar_p = rng.uniform(-1.0, 1.0, (N, Z))
kl_dd, _ = kl_diagonal_forward(mu, logvar, mu_p, logvar_p)
kl_quad = np.array([sum(quad_kl_1d(mu[n, j], logvar[n, j], mu_p[n, j], logvar_p[n, j]) for j in range(Z))
                    for n in range(N)])
log_p, _ = log_normal_forward(z, mu_p, logvar_p)
ratio_dd = log_q - log_p
report("KL(N(mu_q, diag e^lambda_q) || N(mu_p, diag e^lambda_p))", kl_dd, kl_quad, *mc_summary(ratio_dd))

# with p = N(0, I) it is the KL to the standard normal
same, _ = kl_diagonal_forward(mu, logvar, np.zeros_like(mu), np.zeros_like(mu))
assert np.allclose(same, kl_std, rtol=1e-13)

# %% [markdown]
# ## 3. Full covariance, $\Sigma = L L^\top$ with $L_{jj} = e^{s_j}$
#
# The encoder's head is a packed vector of $Z(Z+1)/2$ numbers per example,
# unpacked by `cholesky_from_vector_forward`. The reference computes the KL as
# $H(q, p) - H(q)$ with $H(q)$ from `scipy.stats.multivariate_normal.entropy`
# on the assembled $\Sigma$ and $\mathrm{tr}\,\Sigma$ from its diagonal, so
# neither $\lVert L \rVert_F^2$ nor $\sum_j \log L_{jj}$ is reused. The
# Monte Carlo $\log q$ from `log_q_full_forward` is also compared with
# `scipy.stats.multivariate_normal.logpdf` at the same points.

# %%
v = rng.standard_normal((N, n_cholesky_entries(Z))) * 0.5
L, _ = cholesky_from_vector_forward(v, Z)
Sigma = np.einsum("nij,nkj->nik", L, L)
s = log_diagonal(v, Z)                       # s_j = log L_jj, straight from the head
kl_full, _ = kl_full_standard_normal_forward(mu, L, s)
kl_ref = np.array([0.5 * (Z * np.log(2 * np.pi) + np.trace(Sigma[n]) + mu[n] @ mu[n])
                   - stats.multivariate_normal(mu[n], Sigma[n]).entropy() for n in range(N)])

z_full, _ = reparameterize_full_forward(mu, L, eps)
log_q_full, _ = log_q_full_forward(s, eps)
log_p, _ = log_normal_forward(z_full, np.zeros(Z), np.zeros(Z))
ratio_full = log_q_full - log_p
report("KL(N(mu, L L^T) || N(0, I))", kl_full, kl_ref, *mc_summary(ratio_full))

for n in range(N):
    # the change-of-variables log q against scipy's log-density, on 1,000 of the samples
    scipy_log_q = stats.multivariate_normal(mu[n], Sigma[n]).logpdf(z_full[:1000, n])
    assert np.allclose(log_q_full[:1000, n], scipy_log_q, rtol=1e-12, atol=1e-10)
    # L is the Cholesky factor that scipy finds for Sigma
    assert np.allclose(L[n], linalg.cholesky(Sigma[n], lower=True), atol=1e-12)
print("log_q_full_forward agrees with scipy's multivariate normal log-density; "
      "L is scipy's Cholesky factor of L L^T")

# with no off-diagonal entries and s = lambda / 2 it is the diagonal KL
rows, cols = np.tril_indices(Z)
v_diag = np.zeros_like(v)
v_diag[:, rows == cols] = logvar / 2
assert np.allclose(kl_full_standard_normal_forward(mu, cholesky_from_vector_forward(v_diag, Z)[0],
                                                   log_diagonal(v_diag, Z))[0],
                   kl_std, rtol=1e-13)
print("a diagonal L gives the diagonal KL")

# %% [markdown]
# ## 4. Gradients against centred finite differences
#
# The scalar checked is $\sum_n G_n \mathrm{KL}_n$ (or $\sum G \odot$ output)
# for fixed random $G$.


# %%
def check(name, loss, pairs):
    errs = {label: relative_error(analytic, numerical_gradient(loss, arr)) for label, analytic, arr in pairs}
    print(f"{name}: " + ", ".join(f"{k} {e:.1e}" for k, e in errs.items()))
    assert max(errs.values()) < TOL, (name, errs)


G = rng.standard_normal(N)
for backend in BACKENDS:
    with npvae.use_backend(backend):
        _, cache = kl_standard_normal_forward(mu, logvar)
        dmu, dlogvar = kl_standard_normal_backward(G, cache)
        check(f"{backend:6s} kl_standard_normal_backward",
              lambda: float(kl_standard_normal_forward(mu, logvar)[0] @ G),
              [("dmu", dmu, mu), ("dlogvar", dlogvar, logvar)])

        _, cache = kl_diagonal_forward(mu, logvar, mu_p, logvar_p)
        grads = kl_diagonal_backward(G, cache)
        check(f"{backend:6s} kl_diagonal_backward",
              lambda: float(kl_diagonal_forward(mu, logvar, mu_p, logvar_p)[0] @ G),
              list(zip(("dmu_q", "dlogvar_q", "dmu_p", "dlogvar_p"), grads, (mu, logvar, mu_p, logvar_p))))

# %% [markdown]
# The full-covariance KL through the unpacking: the trace term gives $\partial \mathrm{KL}/\partial L = L$,
# chained to $s_j$ by $\partial/\partial s_j = \partial/\partial L_{jj} \cdot L_{jj}$; the log-determinant
# is written in $s$ and gives $-1$ directly. Together: $L_{jj}^2 - 1$ per $s_j$.


# %%
def kl_full_of_v():
    L, _ = cholesky_from_vector_forward(v, Z)
    return float(kl_full_standard_normal_forward(mu, L, log_diagonal(v, Z))[0] @ G)


L, l_cache = cholesky_from_vector_forward(v, Z)
_, kl_cache = kl_full_standard_normal_forward(mu, L, log_diagonal(v, Z))
dmu, dL, ds = kl_full_standard_normal_backward(G, kl_cache)
dv = cholesky_from_vector_backward(dL, l_cache, ds)
check("kl_full_standard_normal_backward + cholesky_from_vector_backward", kl_full_of_v,
      [("dmu", dmu, mu), ("dv", dv, v)])
diag = np.arange(Z)
expected = G[:, None] * (L[:, diag, diag] ** 2 - 1)                  # chapter 3: L_jj^2 - 1 per s_j
assert np.allclose(dv[:, rows == cols], expected, rtol=1e-12)
print("d KL / d s_j = L_jj^2 - 1, as derived")

# the full-covariance sample and log q, through the unpacking as well
S_small = 5
eps_small = rng.standard_normal((S_small, N, Z))
Gz = rng.standard_normal((S_small, N, Z))
Gs = rng.standard_normal((S_small, N))


def sample_of_v():
    L, _ = cholesky_from_vector_forward(v, Z)
    return float(np.sum(reparameterize_full_forward(mu, L, eps_small)[0] * Gz))


def log_q_of_v():
    return float(np.sum(log_q_full_forward(log_diagonal(v, Z), eps_small)[0] * Gs))


_, z_cache = reparameterize_full_forward(mu, L, eps_small)
dmu, dL = reparameterize_full_backward(Gz, z_cache)
check("reparameterize_full_backward + cholesky_from_vector_backward", sample_of_v,
      [("dmu", dmu, mu), ("dv", cholesky_from_vector_backward(dL, l_cache), v)])
_, q_cache = log_q_full_forward(log_diagonal(v, Z), eps_small)
check("log_q_full_backward + cholesky_from_vector_backward", log_q_of_v,
      [("dv", cholesky_from_vector_backward(None, l_cache, log_q_full_backward(Gs, q_cache)), v)])

# %% [markdown]
# ## 5. The figure: Monte Carlo estimates converging to the closed forms
#
# The running mean of $\log q(z_s) - \log p(z_s)$ over the first $s$ samples,
# for example 0 of each KL, with a band of $\pm 2$ standard errors; the
# closed form is the dashed line. The band narrows like $1/\sqrt{s}$.

# %%
panels = [("diagonal q, p = N(0, I)", ratio_std[:, 0], kl_std[0]),
          ("diagonal q, diagonal p", ratio_dd[:, 0], kl_dd[0]),
          ("full-covariance q, p = N(0, I)", ratio_full[:, 0], kl_full[0])]
counts = np.unique(np.round(np.logspace(1, np.log10(S_MC), 200)).astype(int))
fig, axes = plt.subplots(1, 3, figsize=(11, 3.6), constrained_layout=True)
for ax, (title, r, closed) in zip(axes, panels):
    csum, csq = np.cumsum(r), np.cumsum(r * r)
    mean = csum[counts - 1] / counts
    sd = np.sqrt(np.maximum(csq[counts - 1] / counts - mean ** 2, 0) * counts / (counts - 1))
    se = sd / np.sqrt(counts)
    ax.fill_between(counts, mean - 2 * se, mean + 2 * se, color="C0", alpha=0.25, lw=0,
                    label="±2 standard errors")
    ax.plot(counts, mean, color="C0", lw=1.2, label="Monte Carlo running mean")
    ax.axhline(closed, color="k", ls="--", lw=1, label="closed form")
    ax.set(xscale="log", xlabel="samples s")
    ax.set_title(f"{title}\nclosed form {closed:.4f}, after {S_MC:,}: {mean[-1]:.4f}", fontsize="medium")
    ax.set_ylim(closed - 0.6 * max(abs(closed), 0.5), closed + 0.6 * max(abs(closed), 0.5))
    ax.grid(True, which="major", alpha=0.3)
axes[0].legend(fontsize="small", loc="lower right")
axes[0].set_ylabel("KL estimate (nats)")
fig.suptitle("Monte Carlo estimates of KL(q || p) against the closed forms of chapter 3")
path = FIGURES / f"{STEM}-mc-convergence.png"
fig.savefig(path, dpi=100)
plt.close(fig)
print(f"wrote {path.relative_to(HERE.parent.parent)}")

# %%
print(f"all checks passed in {time.perf_counter() - T0:.1f} s")
