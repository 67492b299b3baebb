"""Where an experiment's files go and how big its runs are (:class:`Settings`), the experiments
there are (:data:`EXPERIMENTS`) and the papers' numbers the reports put beside ours (:data:`PAPER`).

Device: ``"auto"`` picks CUDA when torch sees it, else the CPU (:func:`salface.backends.torch.resolve_device`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

EXPERIMENTS: dict[str, str] = {
    "saliency-onoff": "With and without saliency, same recipe and split, several seeds, paired tests",
    "ratio-sweep": "Reweighted ratio r from 0 to 1 (SAF-BAGE Figure 3)",
    "saliency-source": "ML-Net against spectral residual, frequency-tuned, centre bias and none",
    "backbones": "MobileNetV2, GilNet, AlexNet (+ GAP variant, VGG-16 when its weights are present)",
    "cam": "Class activation maps: share of CAM mass on eyes, nose and mouth against uniform",
    "heads": "One network with age and gender heads against one network per task (UTKFace)",
    "fairness": "Accuracy per UTKFace race, gender and age group; expression per class",
    "adience": "Adience five-fold, subject-exclusive protocol (SAF-BAGE Tables 2-4)",
    "affectnet": "AffectNet with SAF-BAGE's balanced 3,500-image test (Tables 5-6)",
}


# The papers' numbers (SAF-BAGE unless marked), for the tables. Their data: Adience / AffectNet.
PAPER = {
    "saliency-onoff": {
        "age": {"without": "52.2 ± 3.9 %", "with": "62.11 ± 3.2 %", "source": "SAF-BAGE Table 2, Adience 5-fold, AlexNet"},
        "gender": {"without": "83.4 ± 1.6 %", "with": "91.8 ± 1.2 %", "source": "SAF-BAGE Table 3, Adience 5-fold, AlexNet"},
        "expression": {"without": "59.2 %", "with": "67.65 %", "source": "SAF-BAGE Table 6, AffectNet balanced test, AlexNet"},
    },
    "backbones": {
        "alexnet": "91.8 ± 1.2 % (ImageNet, fc6–fc8 fine-tuned)",
        "vgg16": "≈ 93.4 % (\"about 1.6 % better than AlexNet\"; only the last fc layer fine-tuned)",
        "gilnet": "89.8 ± 1.3 % (from scratch)",
        "source": "SAF-BAGE Section 4.3, Adience gender, with saliency (r = 0.3)",
    },
    "ratio-sweep": ("SAF-BAGE Figure 3 (Adience gender, AlexNet): r = 0.9 converges fastest in training "
                    "loss but has the worst validation accuracy; r = 0.3 is best. The figure gives no "
                    "numbers."),
    "adience-without": {"age": "52.2 ± 3.9 % (SAF-BAGE Table 2, without saliency)",
                        "gender": "83.4 ± 1.6 % (SAF-BAGE Table 3, without saliency)"},
    "affectnet-without": {"expression": "59.2 % (SAF-BAGE Table 6, without saliency)"},
    "adience": {"age": "62.11 ± 3.2 % (SAF-BAGE Table 2); VEGAC 60.8 %",
                "gender": "91.8 ± 1.2 % (SAF-BAGE Table 3); VEGAC 88.9 %",
                "age_confusion_diagonal": {"0-2": 92.1, "4-6": 70.2, "8-13": 52.8, "15-20": 36.3,
                                           "25-32": 88.4, "38-43": 29.2, "48-53": 47.8, "60+": 80.1}},
    "affectnet": {"expression": "67.65 % with saliency, 59.2 % without (SAF-BAGE Table 6); VEGAC 72.2 %",
                  "per_class": {"neutral": 62.4, "happy": 76.4, "sad": 64.4, "surprise": 73.0,
                                "fear": 68.4, "disgust": 66.2, "anger": 62.8}},
}


DIFFERENT_DATA = "**different data**: the papers used Adience / AffectNet with AlexNet at 227 px"


@dataclass
class Settings:
    """Where things go and how big the runs are (the CLI fills this from its options)."""

    runs_dir: Path = Path("runs/experiments")
    out_dir: Path = Path("docs/experiments")
    utk_cache: Path = Path("cache/crops/utkface-96-rgb")
    fer_cache: Path = Path("cache/crops/ferplus-96-gray")
    cache_dir: Path = Path("cache/crops")  # where the Adience / AffectNet protocol caches are built
    seeds: tuple[int, ...] = (0, 1, 2)
    epochs: int | None = None          # None: the experiment's default for the dataset
    train_limit: int | None = -1       # -1: the experiment's default; None: the whole split
    val_limit: int | None = -1
    test_limit: int | None = -1
    batch_size: int | None = None
    max_steps: int | None = None       # batches per epoch (tiny runs)
    pretrained: bool | None = None     # None: the recipe's
    saliency: str = "mlnet"            # the "with saliency" model
    device: str = "auto"
    threads: int | None = None
    jobs: int = 1                      # runs trained at once, each in its own process (CPU)
    progress: bool = True
    command: str = ""
    log: Callable[[str], None] = print

    @classmethod
    def tiny(cls, **kw: Any) -> "Settings":
        """A few samples, one epoch of two batches: for tests and smoke checks."""
        base = dict(seeds=(0,), epochs=1, train_limit=24, val_limit=8, test_limit=16, batch_size=8,
                    max_steps=2, progress=False)
        base.update(kw)
        return cls(**base)


# Defaults chosen so the whole set fits about 8 h on 2 CPU cores (see docs/experiments/README.md).
DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    "utkface": {"tasks": ("age", "gender"), "epochs": 5, "train": 5000, "val": 1000, "test": None},
    "ferplus": {"tasks": ("expression",), "epochs": 6, "train": 8000, "val": 1000, "test": None},
}


def _limit(v: int | None, default: int | None) -> int | None:
    return default if v == -1 else v
