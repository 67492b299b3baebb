"""Classification heads: one linear layer per task on top of a shared feature vector.

A network with several heads (e.g. age + gender on UTKFace) shares every layer except the last;
a single-task network is the same thing with one head. ``forward`` returns ``{task: logits}``.
"""

from __future__ import annotations

import torch
from torch import nn


class MultiHead(nn.Module):
    """``{task: Linear(in_features, n_classes)}`` behind one shared dropout."""

    def __init__(self, in_features: int, num_classes: dict[str, int], dropout: float = 0.0) -> None:
        super().__init__()
        if not num_classes:
            raise ValueError("a classifier needs at least one task head")
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.heads = nn.ModuleDict({t: nn.Linear(in_features, n) for t, n in num_classes.items()})

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(self.heads.keys())

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.dropout(x)
        return {t: head(x) for t, head in self.heads.items()}

    def weight(self, task: str) -> torch.Tensor:
        """The ``(n_classes, in_features)`` weight of ``task``'s head (used for class activation maps)."""
        return self.heads[task].weight
