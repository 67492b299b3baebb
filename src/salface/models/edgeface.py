"""EdgeFace face-recognition backbones (George et al., IEEE T-BIOM 2024) as classifier trunks.

EdgeFace is a timm EdgeNeXt whose classifier was reset to a 512-d face embedding and trained for
face recognition (WebFace12M) on 112×112 RGB faces aligned to the ArcFace template
(:func:`salface.crop.align_face`), pixels scaled to [0, 1] and normalised with mean = std = 0.5.

The authors' checkpoints (``edgeface_xs_q.pt`` → timm ``edgenext_x_small``, ``edgeface_xxs_q.pt``
→ ``edgenext_xx_small``) hold a plain state_dict of a wrapper module whose attribute ``model`` is
the EdgeNeXt, with every ``nn.Linear`` dynamically quantised to int8
(``torch.ao.quantization.quantize_dynamic``): those layers are stored as ``scale``,
``zero_point`` and ``_packed_params``. :func:`load_edgeface_float` rebuilds that wrapper,
quantises it the same way, loads the file (every key must match), and copies it into a float32
network: quantised linears' weights are dequantised (``_packed_params._weight_bias()``), every
other tensor is copied as is. The float network is what gets fine-tuned (all of it).

As a :class:`~salface.models.backbones.Classifier`:

* ``features`` = stem + the four stages (the last conv/attention maps, 192 channels for XS, 168
  for XXS; 3×3 at 112 px) — the maps class activation maps are computed on;
* ``pool`` = global average pooling; ``neck`` = the network's own head: LayerNorm over the pooled
  channels, then the pretrained 512-d embedding layer (``Linear(C, 512)``);
* ``heads`` = one new linear layer per task on the 512-d embedding.

Because the neck is LayerNorm then linear, a class score is ``(W_h W_e diag(γ) / σ) · (p − μ)``
+ const for the pooled features ``p`` (σ, μ: their per-sample spread and mean over channels). Its
class activation map is therefore exactly ``Σ_k w_k A_k`` with ``w`` the centred rows of
``W_h W_e diag(γ)``, up to the per-sample factor ``1/σ > 0`` and an additive constant — which the
min–max normalisation of CAMs removes. :meth:`EdgeFaceClassifier.head_weight` returns that ``w``.

The weight files are read by path (``EDGEFACE_WEIGHTS`` environment variable, a folder holding the
files; default ``../shared/weights/edgeface`` beside the checkout); they are never copied into the
package.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

EDGEFACE_ARCH = {"edgeface_xs": "edgenext_x_small", "edgeface_xxs": "edgenext_xx_small"}
EDGEFACE_FILES = {"edgeface_xs": "edgeface_xs_q.pt", "edgeface_xxs": "edgeface_xxs_q.pt"}
EDGEFACE_MEAN = (0.5, 0.5, 0.5)
EDGEFACE_STD = (0.5, 0.5, 0.5)
EMBEDDING = 512
ENV_VAR = "EDGEFACE_WEIGHTS"


class _Wrapper(nn.Module):
    """The authors' module layout: the EdgeNeXt under the attribute ``model`` (keys ``model.…``)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.model = net


def _timm():
    try:
        import timm
    except ImportError as exc:  # pragma: no cover - timm is a training dependency
        raise ImportError("EdgeFace backbones need timm (pip install timm)") from exc
    return timm


def edgenext(backbone: str) -> nn.Module:
    """The float EdgeNeXt of ``backbone`` with the 512-d embedding head, randomly initialised."""
    if backbone not in EDGEFACE_ARCH:
        raise ValueError(f"unknown EdgeFace backbone {backbone!r}; expected one of {sorted(EDGEFACE_ARCH)}")
    net = _timm().create_model(EDGEFACE_ARCH[backbone], pretrained=False)
    net.reset_classifier(EMBEDDING)
    return net


def default_weights_dir() -> Path:
    """``$EDGEFACE_WEIGHTS``, else ``../shared/weights/edgeface`` next to this checkout."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3].parent / "shared" / "weights" / "edgeface"


def weights_path(backbone: str, path: str | os.PathLike | None = None) -> Path:
    """The checkpoint file of ``backbone``: ``path`` itself (a file, or a folder holding the
    authors' file name), else :func:`default_weights_dir`. A clear error when it is missing."""
    if backbone not in EDGEFACE_FILES:
        raise ValueError(f"unknown EdgeFace backbone {backbone!r}; expected one of {sorted(EDGEFACE_FILES)}")
    p = Path(path) if path is not None else default_weights_dir()
    if p.is_dir() or path is None:
        p = p / EDGEFACE_FILES[backbone]
    if not p.is_file():
        raise FileNotFoundError(
            f"EdgeFace weights for {backbone} not found at {p}: put the authors' {EDGEFACE_FILES[backbone]} "
            f"there, or point the {ENV_VAR} environment variable (or ClassifierConfig.extra['weights']) "
            f"at the file or its folder")
    return p


def load_quantized(backbone: str, path: str | os.PathLike | None = None) -> nn.Module:
    """The checkpoint as stored: the wrapper with dynamically int8-quantised linears, every key
    of the file loaded (strict)."""
    from torch.ao.quantization import quantize_dynamic

    p = weights_path(backbone, path)
    try:
        sd = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise RuntimeError(f"cannot read EdgeFace checkpoint {p}: {exc}") from exc
    q = quantize_dynamic(_Wrapper(edgenext(backbone)), {nn.Linear}, dtype=torch.qint8)
    try:
        q.load_state_dict(sd, strict=True)
    except RuntimeError as exc:
        raise RuntimeError(f"{p} is not an {backbone} checkpoint ({EDGEFACE_ARCH[backbone]} + "
                           f"512-d embedding, int8 dynamic linears): {exc}") from exc
    return q


def dequantized_state_dict(quantized: nn.Module) -> dict[str, torch.Tensor]:
    """Float32 state_dict of a dynamically quantised module: each quantised linear's weight
    dequantised and its bias as stored; every other tensor copied."""
    from torch.ao.nn.quantized.dynamic import Linear as QLinear

    out: dict[str, torch.Tensor] = {}
    qnames = set()
    for name, mod in quantized.named_modules():
        if isinstance(mod, QLinear):
            w, b = mod._packed_params._weight_bias()
            out[f"{name}.weight"] = w.dequantize().float().clone()
            if b is not None:
                out[f"{name}.bias"] = b.detach().float().clone()
            qnames.add(name)
    for k, v in quantized.state_dict().items():
        mod_name = k.rsplit(".", 1)[0]
        if any(k.startswith(q + ".") for q in qnames) or mod_name in qnames:
            continue
        if isinstance(v, torch.Tensor):
            out[k] = v.detach().clone()
    return out


def load_edgeface_float(backbone: str, path: str | os.PathLike | None = None) -> nn.Module:
    """The float32 EdgeNeXt (512-d embedding head) holding the dequantised checkpoint."""
    sd = dequantized_state_dict(load_quantized(backbone, path))
    net = _Wrapper(edgenext(backbone))
    net.load_state_dict(sd, strict=True)
    return net.model


def classifier_parts(backbone: str, pretrained: bool, path: str | os.PathLike | None = None
                     ) -> tuple[nn.Module, nn.Module, int]:
    """``(features, neck, embedding width)`` for :func:`salface.models.backbones.build_classifier`."""
    net = load_edgeface_float(backbone, path) if pretrained else edgenext(backbone)
    features = nn.Sequential(net.stem, *net.stages)
    head = net.head
    c = head.norm.weight.shape[0]
    norm = nn.LayerNorm(c, eps=head.norm.eps)
    norm.load_state_dict(head.norm.state_dict())
    neck = nn.Sequential(norm, head.fc)
    return features, neck, head.fc.out_features


def cam_weight(head_weight: torch.Tensor, neck: nn.Sequential) -> torch.Tensor:
    """``(n_classes, C)`` CAM weights over the trunk's channels through a LayerNorm + linear neck:
    the rows of ``W_h W_e diag(γ)``, centred (see the module docstring)."""
    norm, fc = neck[0], neck[1]
    w = head_weight @ fc.weight * norm.weight[None, :]
    return w - w.mean(dim=1, keepdim=True)
