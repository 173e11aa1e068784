"""``npvae train``'s flags of the posteriors with options, turned into ``posterior_params``:
the Concrete's (docs/15-discrete-latents.md) and the flows' (docs/18-normalising-flows.md);
each refused in one line where the posterior does not take it."""
from __future__ import annotations

from .errors import CLIError


def posterior_params(args):
    """``posterior_params`` of ``VAE(posterior=args.posterior)`` from the flags; None when
    the posterior takes none or none is given."""
    return _concrete_params(args) or _flow_params(args)


#: ``npvae train`` flags of ``--posterior concrete`` and their ``posterior_params`` keys
_CONCRETE_FLAGS = {"categories": "n_categories", "temperature": "temperature",
                   "anneal_rate": "anneal_rate", "min_temperature": "min_temperature",
                   "straight_through": "straight_through"}


def _concrete_params(args):
    """``posterior_params`` from the Concrete's flags (docs/15-discrete-latents.md); None
    for the Gaussians, which refuse the flags."""
    given = {key: getattr(args, flag, None) for flag, key in _CONCRETE_FLAGS.items()}
    given = {k: v for k, v in given.items() if v not in (None, False)}
    if getattr(args, "posterior", "diagonal") != "concrete":
        if given:
            flags = ", ".join("--" + f.replace("_", "-") for f, k in _CONCRETE_FLAGS.items()
                              if k in given)
            raise CLIError(f"{flags}: for --posterior concrete only")
        return None
    if args.model != "vae":
        raise CLIError("--posterior concrete is for --model vae")
    return given


#: ``npvae train`` flags of the flows and their ``posterior_params`` keys, with the
#: posteriors that take each (docs/18-normalising-flows.md)
_FLOW_FLAGS = {"n_flows": ("n_flows", ("planar", "iaf")),
               "flow_hidden": ("hidden_size", ("iaf",)),
               "flow_context": ("context_size", ("iaf",))}


def _flow_params(args):
    """``posterior_params`` from ``--n-flows``, ``--flow-hidden``, ``--flow-context``; None
    when none is given.  Each refused in one line for a posterior that does not take it."""
    posterior, given = getattr(args, "posterior", "diagonal"), {}
    for flag, (key, takers) in _FLOW_FLAGS.items():
        value = getattr(args, flag, None)
        if value is None:
            continue
        if posterior not in takers:
            raise CLIError(f"--{flag.replace('_', '-')}: for --posterior "
                           f"{' or '.join(takers)} only")
        given[key] = value
    if posterior in ("planar", "iaf") and args.model != "vae":
        raise CLIError(f"--posterior {posterior} is for --model vae")
    return given or None
