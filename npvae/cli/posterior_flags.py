"""``npvae train``'s flags of the posteriors with options, turned into ``posterior_params``:
the Concrete's (docs/15-discrete-latents.md), the simplex posteriors'
(docs/19-simplex-latents.md) and the flows' (docs/18-normalising-flows.md); each refused
in one line where the posterior does not take it."""
from __future__ import annotations

from .errors import CLIError

#: for each posterior with options, its ``npvae train`` flags and their ``posterior_params`` keys
POSTERIOR_FLAGS = {
    "concrete": {"categories": "n_categories", "temperature": "temperature",
                 "anneal_rate": "anneal_rate", "min_temperature": "min_temperature",
                 "straight_through": "straight_through"},
    "kumaraswamy": {"prior_alpha": "prior_alpha"},
    "dirichlet": {"prior_alpha": "prior_alpha"},
    "planar": {"n_flows": "n_flows"},
    "iaf": {"n_flows": "n_flows", "flow_hidden": "hidden_size", "flow_context": "context_size"}}


def posterior_params(args):
    """``posterior_params`` of ``VAE(posterior=args.posterior)`` from the flags; None when
    the posterior takes none or none is given; another posterior's flags refused."""
    post = getattr(args, "posterior", "diagonal")
    own = POSTERIOR_FLAGS.get(post, {})
    flags = sorted({f for table in POSTERIOR_FLAGS.values() for f in table})
    given = {f: getattr(args, f, None) for f in flags
             if getattr(args, f, None) not in (None, False)}
    foreign = [f for f in given if f not in own]
    if foreign:
        owners = " or ".join(p for p, table in POSTERIOR_FLAGS.items() if foreign[0] in table)
        raise CLIError(", ".join("--" + f.replace("_", "-") for f in foreign)
                       + f": for --posterior {owners} only")
    if post in POSTERIOR_FLAGS and args.model != "vae":
        raise CLIError(f"--posterior {post} is for --model vae")
    return {own[f]: v for f, v in given.items()} or None
