"""Parameters live in one flat buffer; ``params_`` holds named views into it.

One buffer per model means the optimiser updates every parameter in a single
pass (docs/11-optimisation.md), a checkpoint is one array, and changing an array of
``params_`` in place changes the model.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np


class ParamLayout:
    """Names, shapes and offsets of a model's parameters in a flat vector."""

    def __init__(self, shapes):
        self.shapes = {name: tuple(int(n) for n in shape) for name, shape in shapes.items()}
        self.offsets = {}
        offset = 0
        for name, shape in self.shapes.items():
            self.offsets[name] = offset
            offset += math.prod(shape)
        self.size = offset

    def allocate(self, dtype):
        """A zeroed flat vector ``(P,)`` of this layout."""
        return np.zeros(self.size, dtype=dtype)

    def views(self, flat):
        """Named views into ``flat``: writing to a view writes to ``flat``."""
        if flat.shape != (self.size,):
            raise ValueError(f"flat vector has shape {flat.shape}, layout needs ({self.size},)")
        out = {}
        for name, shape in self.shapes.items():
            start = self.offsets[name]
            out[name] = flat[start:start + math.prod(shape)].reshape(shape)
        return out

    def describe_difference(self, other_shapes):
        """A readable list of where ``other_shapes`` differs from this layout."""
        other = {k: tuple(v) for k, v in other_shapes.items()}
        lines = []
        for name in sorted(set(self.shapes) | set(other)):
            mine, theirs = self.shapes.get(name), other.get(name)
            if mine != theirs:
                lines.append(f"{name}: model {mine}, file {theirs}")
        return "; ".join(lines)


class ParamViews(Mapping):
    """``params_``: the named views into one flat vector, read-only as a mapping.

    ``params_[name][...] = value`` writes into the flat vector (and so changes the
    model); ``params_[name] = value`` would rebind the name to an array the model
    never reads, so it is refused.
    """

    def __init__(self, layout, flat):
        self.flat = flat
        #: the same views in a plain dict, for hot loops (a lookup there is no Python call)
        self.arrays = layout.views(flat)

    def __getitem__(self, name):
        return self.arrays[name]

    def __iter__(self):
        return iter(self.arrays)

    def __len__(self):
        return len(self.arrays)

    def __setitem__(self, name, value):
        if name in self.arrays and value is self.arrays[name]:
            return                       # ``params_[k] += 1`` updated the view in place
        raise TypeError(f"params_[{name!r}] = ... would detach the name from flat_params_ "
                        f"(the model would not see it); write in place: "
                        f"params_[{name!r}][...] = value")

    def __delitem__(self, name):
        raise TypeError("params_ has a fixed set of names")

    def __repr__(self):
        return "ParamViews({" + ", ".join(f"{k!r}: {v.shape}" for k, v in self.items()) + "})"
