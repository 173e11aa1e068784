"""Parameters live in one flat buffer; ``params_`` holds named views into it.

One buffer per model means the optimiser updates every parameter in a single
pass (docs/11-optimisation.md), a checkpoint is one array, and changing an array of
``params_`` in place changes the model.
"""
from __future__ import annotations

import math

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
