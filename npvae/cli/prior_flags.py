"""``npvae train --prior vamp --n-pseudo-inputs K``: the model's ``prior`` and
``prior_params`` from the flags (docs/17-vampprior.md).  Errors are ``ValueError``s,
which the command line prints in one line with exit status 2 (this module imports
nothing of the CLI, so that :mod:`.common` can import it)."""
from __future__ import annotations

#: pseudo-inputs when ``--n-pseudo-inputs`` is not given: the paper's for MNIST
DEFAULT_PSEUDO_INPUTS = 500


def prior_kwargs(args):
    """``{"prior": "vamp", "prior_params": {...}}`` for ``--prior vamp``, else ``{}``;
    ``--n-pseudo-inputs`` without it, and models other than vae and hvae, refused."""
    K = getattr(args, "n_pseudo_inputs", None)
    if getattr(args, "prior", "standard") != "vamp":
        if K is not None:
            raise ValueError("--n-pseudo-inputs: for --prior vamp only")
        return {}
    if args.model not in ("vae", "hvae"):
        raise ValueError(f"--prior vamp is for --model vae and hvae, not {args.model}")
    return {"prior": "vamp",
            "prior_params": {"n_pseudo_inputs": DEFAULT_PSEUDO_INPUTS if K is None else K}}
