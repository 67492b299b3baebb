"""Training recipes as named presets.

``saf-bage`` and ``vegac`` follow the papers (where a paper is vague the choice is stated on the
field); ``default`` is the recipe of the shipped MobileNetV2 models, chosen for two CPU cores.
A preset name resolves per task group: :func:`get_preset("saf-bage", ("expression",))` gives the
expression variant, ``("age", "gender")`` the age/gender one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class Augment:
    """Augmentations applied to cached uint8 crops and their saliency maps together."""

    flip: bool = True             # horizontal flip with p = 0.5
    rotate: float = 0.0           # uniform rotation in ±degrees
    shift: float = 0.0            # uniform translation in ± fraction of the crop side
    scale: float = 0.0            # uniform zoom in 1 ± scale
    wild: bool = False            # photo-like damage after the warp (salface.augment: low resolution,
                                  # JPEG, blur, noise, exposure, colour cast, grayscale, occlusion)
    context: float = 0.0          # probability of replacing a crop's replicated padding by a scene
    context_source: str = ""      # folder of scene photos for it (4 of every 5, sorted; see augment.py)
    parts: float = 0.0            # probability of covering a face part placed by the landmarks
                                  # (eyes band, nose-to-chin, a cheek or the mouth; augment.occlude_part)


@dataclass(frozen=True)
class Preset:
    name: str
    backbone: str
    tasks: tuple[str, ...]
    input_size: int = 112
    color: str = "rgb"
    dropout: float = 0.2
    pretrained: bool = True
    freeze: int = 0               # trunk layers frozen from the input side (−1: the whole trunk)
    optimizer: str = "adamw"      # "sgd" | "adam" | "adamw"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 1e-4
    epochs: int = 10
    batch_size: int = 64
    schedule: str = "cosine"      # "cosine" | "step" | "constant"
    warmup_epochs: float = 0.0
    milestones: tuple[int, ...] = ()
    step_every: int = 0           # with schedule="step": also ÷gamma every `step_every` epochs after the last milestone
    gamma: float = 0.1
    label_smoothing: float = 0.0
    soft_targets: bool = False    # train on the cache's label distributions (FER+ votes) where it has them
    class_weighted: bool = False
    augment: Augment = field(default_factory=Augment)
    saliency: str = "mlnet"
    ratio: float = 0.30
    dataset: str = "utkface"
    tta_flip: bool = False        # average the logits of the crop and its mirror at evaluation
    crop_mode: str = "margin"     # the cache's crops: "margin" (enlarged box) or "arcface" (aligned)
    balance: tuple[str, ...] = ()  # balanced sampling over these keys (tasks, "race"); () = uniform
    balance_power: float = 1.0    # sample weight n_stratum ** -power (1 = equal strata, 0 = uniform)
    gender_within: tuple[str, ...] = ()  # weight the gender loss so women and men count equally
                                  # within each stratum of these keys (e.g. age, race); () = off
    age_loss: str = "ce"          # "ce" | "ordinal" (Gaussian label distribution over the age groups)
    ordinal_sigma: float = 0.6    # its width in groups
    ordinal_penalty: float = 0.0  # + this × expected |predicted group − true group|
    age_years: float = 0.0        # weight of a training-only head on the age in years (UTKFace file
                                  # names; sampling.AgeYearsLoss); 0 = off. Never saved or shipped
    age_years_sigma: float = 2.0  # its Gaussian target's width in years
    ema_decay: float = 0.0        # EMA of the weights (0 = off); evaluated and checkpointed as best
    init: str = ""                # start from these weights instead of ImageNet/face-pretrained ones:
                                  # "bundled:NAME" (a shipped model) or a .safetensors file / run folder
    init_sha256: str = ""         # the init file's SHA-256 the recipe was written for (checked when set)
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["tasks"] = list(self.tasks)
        d["milestones"] = list(self.milestones)
        d["balance"] = list(self.balance)
        d["gender_within"] = list(self.gender_within)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Preset":
        d = dict(d)
        d["augment"] = Augment(**d.get("augment", {}))
        d["tasks"] = tuple(d["tasks"])
        d["milestones"] = tuple(d.get("milestones", ()))
        d["balance"] = tuple(d.get("balance", ()))
        d["gender_within"] = tuple(d.get("gender_within", ()))
        return cls(**d)

    def with_overrides(self, **kw: Any) -> "Preset":
        return replace(self, **{k: v for k, v in kw.items() if v is not None})


AG = ("age", "gender")
EX = ("expression",)

PRESETS: dict[str, Preset] = {
    # SAF-BAGE (AlexNet, Caffe-style SGD). Age/gender: fc6–fc8 trained, conv frozen.
    "saf-bage-age-gender": Preset(
        name="saf-bage-age-gender", backbone="alexnet", tasks=AG, input_size=227, dropout=0.4,
        freeze=-1, optimizer="sgd", lr=1e-3, weight_decay=5e-4, epochs=30, batch_size=128,
        schedule="constant", augment=Augment(flip=True, rotate=3.0),
        notes="SAF-BAGE: fc6–fc8 trained, flips and ±3° rotations, dropout 0.4, lr 0.001, 30 epochs, "
              "batch 128 (the paper trains one network per task; here one network, two heads)."),
    # SAF-BAGE expression: conv5–fc8 trained (conv1–conv4 frozen), class-weighted loss.
    "saf-bage-expression": Preset(
        name="saf-bage-expression", backbone="alexnet", tasks=EX, input_size=227, color="gray",
        dropout=0.35, freeze=4, optimizer="sgd", lr=1e-3, weight_decay=5e-4, epochs=40,
        batch_size=128, schedule="step", milestones=(30,), gamma=0.1, class_weighted=True,
        augment=Augment(flip=True, rotate=3.0), dataset="ferplus",
        notes="SAF-BAGE: conv5–fc8 trained, dropout 0.35, 40 epochs, lr ÷10 after 30, class-weighted loss."),
    # VEGAC (VGG-16): first 10 conv layers frozen, Adam.
    "vegac-age-gender": Preset(
        name="vegac-age-gender", backbone="vgg16", tasks=AG, input_size=224, dropout=0.5, freeze=10,
        optimizer="adam", lr=1e-3, weight_decay=0.0, epochs=80, batch_size=32, schedule="step",
        milestones=(50,), step_every=10, gamma=0.1, augment=Augment(flip=False, rotate=5.0),
        ratio=0.7,
        notes="VEGAC: VGG-16, first 10 layers frozen, ±5° rotation, dropout 0.5, Adam lr 0.001, 80 epochs, "
              "÷10 every 10 epochs after 50; r = 0.7 as in the paper. Batch size not given: 32."),
    "vegac-expression": Preset(
        name="vegac-expression", backbone="vgg16", tasks=EX, input_size=224, color="gray", dropout=0.5,
        freeze=10, optimizer="adam", lr=1e-3, weight_decay=0.0, epochs=80, batch_size=32,
        schedule="step", milestones=(50,), step_every=10, gamma=0.1,
        augment=Augment(flip=False, rotate=5.0), ratio=0.7, dataset="ferplus",
        notes="VEGAC recipe on FER+ (gray)."),
    # Shipped defaults: MobileNetV2 from ImageNet, sized for 2 CPU cores.
    "default-age-gender": Preset(
        name="default-age-gender", backbone="mobilenet_v2", tasks=AG, input_size=96, dropout=0.2,
        freeze=2, optimizer="adamw", lr=1e-3, weight_decay=1e-4, epochs=6, batch_size=64,
        schedule="cosine", warmup_epochs=0.3, label_smoothing=0.1,
        augment=Augment(flip=True, rotate=10.0, shift=0.05, scale=0.08),
        notes="MobileNetV2 (ImageNet), first 2 blocks frozen, AdamW + cosine, label smoothing 0.1, "
              "96 px RGB, one network with age and gender heads."),
    "default-expression": Preset(
        name="default-expression", backbone="mobilenet_v2", tasks=EX, input_size=96, color="gray",
        dropout=0.2, freeze=1, optimizer="adamw", lr=1e-3, weight_decay=1e-4, epochs=12,
        batch_size=64, schedule="cosine", warmup_epochs=0.3, label_smoothing=0.0, soft_targets=True,
        augment=Augment(flip=True, rotate=10.0, shift=0.06, scale=0.08), dataset="ferplus",
        notes="MobileNetV2 (ImageNet), 96 px gray (FER+ faces are 48 px, upscaled), AdamW + cosine, "
              "trained on the FER+ annotators' vote distributions (soft targets)."),
    # Issue 12 §2, "train for the wild": every lever below can be switched off on its own by a
    # variant (see the -no-* presets) to attribute its gain.
    "wild-age-gender": Preset(
        name="wild-age-gender", backbone="edgeface_xs", tasks=AG, input_size=112, dropout=0.2,
        freeze=0, optimizer="adamw", lr=5e-4, weight_decay=0.05, epochs=6, batch_size=64,
        schedule="cosine", warmup_epochs=0.3, label_smoothing=0.1, crop_mode="arcface",
        augment=Augment(flip=True, rotate=20.0, shift=0.06, scale=0.10, wild=True),
        balance=("gender", "age", "race"), balance_power=0.5, age_loss="ordinal",
        ordinal_sigma=0.6, ema_decay=0.998,
        notes="EdgeFace-XS (face-recognition pretrained, WebFace12M), whole network fine-tuned, "
              "112 px ArcFace-aligned RGB crops, ML-Net r = 0.3; photo-like augmentation (salface.augment) "
              "+ flip, ±20°, ±6 % shift, ±10 % zoom; sampling balanced over gender × age group × race "
              "(weights n^-0.5); age: CE on a Gaussian label distribution (σ = 0.6 groups); gender: "
              "label smoothing 0.1; EMA of the weights (0.998) evaluated and kept as best."),
}
# Ablations of the wild recipe: one lever off each.
PRESETS["wild-age-gender-mobilenet"] = replace(
    PRESETS["wild-age-gender"], name="wild-age-gender-mobilenet", backbone="mobilenet_v2", freeze=2,
    weight_decay=1e-4, notes="wild-age-gender with ImageNet MobileNetV2 (first 2 blocks frozen) instead of EdgeFace-XS.")
PRESETS["wild-age-gender-xxs"] = replace(
    PRESETS["wild-age-gender"], name="wild-age-gender-xxs", backbone="edgeface_xxs",
    notes="wild-age-gender with EdgeFace-XXS.")
PRESETS["wild-age-gender-no-aug"] = replace(
    PRESETS["wild-age-gender"], name="wild-age-gender-no-aug",
    augment=Augment(flip=True, rotate=10.0, shift=0.05, scale=0.08),
    notes="wild-age-gender without the photo-like augmentation (the default recipe's flip, ±10°, ±5 %, ±8 %).")
PRESETS["wild-age-gender-no-balance"] = replace(
    PRESETS["wild-age-gender"], name="wild-age-gender-no-balance", balance=(),
    notes="wild-age-gender with uniform sampling.")
PRESETS["wild-age-gender-ce"] = replace(
    PRESETS["wild-age-gender"], name="wild-age-gender-ce", age_loss="ce",
    notes="wild-age-gender with plain cross-entropy (label smoothing 0.1) for age.")
PRESETS["wild-age-gender-no-ema"] = replace(
    PRESETS["wild-age-gender"], name="wild-age-gender-no-ema", ema_decay=0.0,
    notes="wild-age-gender without the EMA of the weights.")

# Robustness fine-tuning (issue 12): the shipped model, trained further for a few epochs with the
# photo-like damage of salface.augment (occlusion, JPEG, noise, blur, low resolution, exposure, …)
# and larger rotations, at a lower learning rate. Same architecture, input and ML-Net reweighting,
# so the runtime cost is unchanged. The init hashes pin the shipped v3 models this was tried from.
PRESETS["robust-expression-no-context"] = replace(
    PRESETS["default-expression"], name="robust-expression-no-context", epochs=5, lr=3e-4, warmup_epochs=0.2,
    augment=Augment(flip=True, rotate=20.0, shift=0.06, scale=0.10, wild=True),
    init="bundled:default-expression",
    init_sha256="8846c70392f0d95af5865d728b3646e88a795f95edf9587b19b0ccba7994d613",
    notes="default-expression (shipped v3 weights) fine-tuned 5 epochs at lr 3e-4 with the photo-like "
          "augmentation + flip, ±20°, ±6 % shift, ±10 % zoom; soft targets as before.")
# FER+ images are tight 48-px cuts, so a 30 % margin crop of them is mostly replicated edge pixels,
# which no photo of a face in a scene has: half of the training crops get a scene instead.
PRESETS["robust-expression"] = replace(
    PRESETS["robust-expression-no-context"], name="robust-expression",
    augment=replace(PRESETS["robust-expression-no-context"].augment, context=0.5,
                    context_source="../shared/data/nus-saliency/stimuli"),
    notes=PRESETS["robust-expression-no-context"].notes + " Half of the crops: the replicated padding "
          "replaced by a region of a scene photo (NUS eye-fixation stimuli, 4 of every 5; soft seam).")
PRESETS["robust-expression-parts"] = replace(
    PRESETS["robust-expression"], name="robust-expression-parts",
    augment=replace(PRESETS["robust-expression"].augment, parts=0.3),
    notes=PRESETS["robust-expression"].notes + " A face part covered on 30 % of the crops (eyes band, "
          "nose-to-chin or a cheek/the mouth, placed by the landmarks).")
PRESETS["robust-age-gender"] = replace(
    PRESETS["default-age-gender"], name="robust-age-gender", epochs=4, lr=3e-4, warmup_epochs=0.2,
    augment=Augment(flip=True, rotate=20.0, shift=0.06, scale=0.10, wild=True, parts=0.2),
    balance=("gender", "age", "race"), balance_power=0.5,
    init="bundled:default-age-gender",
    init_sha256="d94757b66af41ab63f189ff48309902a265a5dede41e8b182a7503980d4e4a06",
    notes="default-age-gender (shipped weights) fine-tuned 4 epochs at lr 3e-4 with the photo-like "
          "augmentation + flip, ±20°, ±6 % shift, ±10 % zoom, a face part covered on 20 % of the crops "
          "(eyes band, nose-to-chin or a cheek/the mouth, placed by the landmarks), sampling balanced "
          "over gender × age group × race (weights n^-0.5).")
PRESETS["robust-age-gender-uniform"] = replace(
    PRESETS["robust-age-gender"], name="robust-age-gender-uniform", balance=(),
    notes="robust-age-gender with uniform sampling (the data's own mix of gender, age and race).")

# UTKFace's women are scarce among older non-white faces, and on balanced in-the-wild photos the
# shipped model calls adult women men with high confidence: the data's conditional prior
# P(gender | age, race) leaks into the answer. Reweighting only the gender loss (sampling and the
# age loss unchanged) gives women and men the same weight within every age group × race stratum.
PRESETS["robust-age-gender-fair"] = replace(
    PRESETS["robust-age-gender-uniform"], name="robust-age-gender-fair", gender_within=("age", "race"),
    notes="robust-age-gender-uniform with the gender loss reweighted so that women and men weigh the "
          "same within each age group × race stratum (weights n_stratum / (2 n_stratum,gender), "
          "clipped to [0.25, 4]); sampling and the age loss unchanged.")

# Session 7: age has its own default network (default-age), so its recipe can serve age alone.
# An ordinal age loss (Gaussian label distributions over the groups) rewards near misses, which
# issue 12's 1-off floor counts; the gender head trains along but is not used from this model.
PRESETS["robust-age-ordinal"] = replace(
    PRESETS["robust-age-gender-uniform"], name="robust-age-ordinal", epochs=4, lr=2e-4,
    age_loss="ordinal", ordinal_sigma=0.6, init="runs/soup-robust-age-gender-fair-0.7/best.safetensors",
    init_sha256="a8b629f443462d72d8b032eeb76b8fb36f35ddcaab1c4d03971346ff73e22594",
    notes="default-age (session 7's `salface soup ... --alpha 0.7` run; shipped until session 8, now the "
          "first member of age-gender-ensemble) fine-tuned 4 epochs at lr 2e-4 with the ordinal age loss "
          "(sigma 0.6 groups) and the robust-age-gender-uniform augmentation (photo-like damage, "
          "±20°, face parts on 20 % of the crops).")

# Session 8: a second, different network for age and gender, to average with the MobileNetV2s.
# The face-pretrained EdgeFace-XS of the wild recipe (run `wild-ag-xs-e12`, ArcFace-aligned 112-px
# crops) collapsed when landmarks were missing (BlazeFace, dlib HOG, a shifted box), so it is
# trained on further on the papers' 30 % margin crops at 96 px, the crop and ML-Net map the
# MobileNetV2s already use: at run time the crop and saliency are shared and only the network is
# extra. Uniform sampling (balancing cost children's gender), face parts as the robust recipes.
PRESETS["edge-age-gender"] = replace(
    PRESETS["wild-age-gender"], name="edge-age-gender", input_size=96, crop_mode="margin", epochs=5,
    lr=2.5e-4, warmup_epochs=0.2, balance=(),
    augment=Augment(flip=True, rotate=20.0, shift=0.06, scale=0.10, wild=True, parts=0.2),
    init="runs/wild-ag-xs-e12/best.safetensors",
    init_sha256="d32acd15f44aa1e34f5e8aa4dea3bbe3eff87c5e308665fe8750a246113191af",
    notes="wild-ag-xs-e12 (EdgeFace-XS, `salface train --preset wild-age-gender --cache "
          "cache/crops/utkface-112-arcface --epochs 12`, epoch 9) trained 5 more epochs at lr 2.5e-4 "
          "on 96-px 30 % margin crops (no landmarks needed), uniform sampling, photo-like damage + flip, "
          "±20°, ±6 % shift, ±10 % zoom, a face part covered on 20 % of the crops; ordinal age loss, "
          "gender label smoothing 0.1, EMA 0.998 as in the wild recipe.")

# The same idea for expression: a face-pretrained EdgeFace-XS on the expression model's own crop
# (96-px gray FER+ faces, soft targets, flip TTA), trained with the robust recipes' damage and
# face parts, to average with the shipped MobileNetV2.
PRESETS["edge-expression"] = replace(
    PRESETS["default-expression"], name="edge-expression", backbone="edgeface_xs", freeze=0,
    lr=5e-4, weight_decay=0.05, epochs=10, warmup_epochs=0.3, ema_decay=0.998, tta_flip=True,
    augment=Augment(flip=True, rotate=20.0, shift=0.06, scale=0.10, wild=True, parts=0.3),
    notes="EdgeFace-XS (face-recognition pretrained, WebFace12M), whole network fine-tuned 10 epochs "
          "on 96-px gray FER+ crops (30 % margin) with the annotators' vote distributions, AdamW lr "
          "5e-4 wd 0.05, cosine, photo-like damage + flip, ±20°, ±6 % shift, ±10 % zoom, a face part "
          "covered on 30 % of the crops, EMA 0.998; flip TTA at evaluation.")

# Session 9 (a lent GPU for a few minutes): the members trained longer from their pretrained
# starting points, several seeds, to average. The EdgeFace member starts from the face-recognition
# weights directly on the margin crop (no aligned-crop stage); the expression member from ImageNet
# with the robust recipes' damage and face parts from the first epoch (the NUS scene context, which
# was neutral, is left out: its photos do not travel to the GPU machine) and an EMA of the weights.
PRESETS["edge-age-gender-long"] = replace(
    PRESETS["edge-age-gender"], name="edge-age-gender-long", epochs=10, lr=5e-4, warmup_epochs=0.3,
    init="", init_sha256="",
    notes="EdgeFace-XS (face-recognition pretrained, WebFace12M), whole network fine-tuned 10 epochs "
          "on 96-px 30 % margin crops, AdamW lr 5e-4 wd 0.05, cosine, uniform sampling, photo-like "
          "damage + flip, ±20°, ±6 % shift, ±10 % zoom, a face part covered on 20 % of the crops; "
          "ordinal age loss, gender label smoothing 0.1, EMA 0.998.")
PRESETS["edge-age-gender-long-xxs"] = replace(
    PRESETS["edge-age-gender-long"], name="edge-age-gender-long-xxs", backbone="edgeface_xxs",
    notes="edge-age-gender-long with EdgeFace-XXS.")
# Session 13: issue 12 lists input sizes 96-160 px; every margin-crop age/gender network so far
# was 96 px, while UTKFace's chips hold a face of ~130 px. The one-stage EdgeFace recipe at 128 px.
PRESETS["edge-age-gender-128"] = replace(
    PRESETS["edge-age-gender-long"], name="edge-age-gender-128", input_size=128,
    notes="edge-age-gender-long on 128-px 30 % margin crops (cache made with --size 128).")
# Session 14: UTKFace's gender labels are wrong on some faces, mostly women filed as men
# (`salface cache audit`, salface.training.label_audit). The two members of the shipped
# age-gender-ensemble, trained on a little further at a low rate: on the audited cache (flagged
# train labels missing) and, as the paired control, on the published labels, with each member's
# own recipe otherwise. The init folders are `benchmarks/wrap_shipped_run.py age-gender-ensemble
# --member 0|1` copies of the shipped members (their SHA-256 below).
PRESETS["audit-age-gender-m"] = replace(
    PRESETS["robust-age-gender-fair"], name="audit-age-gender-m", epochs=3, lr=1e-4,
    init="runs/soup-robust-age-gender-fair-0.7/best.safetensors",
    init_sha256="a8b629f443462d72d8b032eeb76b8fb36f35ddcaab1c4d03971346ff73e22594",
    notes="age-gender-ensemble's MobileNetV2 member (default-age) trained 3 more epochs at lr 1e-4 "
          "with its own recipe (robust-age-gender-fair); run it on the audited cache or, as the "
          "control, on the source cache.")
PRESETS["audit-age-gender-e"] = replace(
    PRESETS["edge-age-gender"], name="audit-age-gender-e", epochs=3, lr=1e-4,
    init="runs/edge-ag-96/best.safetensors",
    init_sha256="311926d3193594d352cb2d291cde5c082e5a73eb3cb7c1fb1966999730ca724e",
    notes="age-gender-ensemble's EdgeFace-XS member (edge-ag-96) trained 3 more epochs at lr 1e-4 "
          "with its own recipe (edge-age-gender); on the audited cache or, as the control, the source.")
PRESETS["robust-expression-long"] = replace(
    PRESETS["default-expression"], name="robust-expression-long", epochs=8, ema_decay=0.998,
    tta_flip=True, augment=Augment(flip=True, rotate=20.0, shift=0.06, scale=0.10, wild=True, parts=0.3),
    notes="MobileNetV2 (ImageNet), 96 px gray FER+ crops, soft targets, AdamW lr 1e-3 + cosine, 8 "
          "epochs, photo-like damage + flip, ±20°, ±6 % shift, ±10 % zoom, a face part covered on "
          "30 % of the crops, EMA 0.998; flip TTA at evaluation.")

# Session 9, the same loan: session 6's robustness fine-tune applied again, now to the shipped v4
# (itself v3 averaged with such a fine-tune), with face parts covered twice as often, since
# occluders are where expression still loses most. No scene context (its photos do not travel).
PRESETS["robust-expression-v4ft"] = replace(
    PRESETS["robust-expression-no-context"], name="robust-expression-v4ft",
    augment=replace(PRESETS["robust-expression-no-context"].augment, parts=0.5),
    init="bundled:default-expression",
    init_sha256="90e9b581a4af5761ccf315683154369b9fd15bfd091b2e4b60974845d00bcd17",
    notes="default-expression v4 (shipped weights) fine-tuned 5 epochs at lr 3e-4 with the photo-like "
          "augmentation + flip, ±20°, ±6 % shift, ±10 % zoom, a face part covered on 50 % of the crops "
          "(eyes band, nose-to-chin or a cheek/the mouth); soft targets as before.")

# Session 11: a second expression network for an ensemble with v4, trained from ImageNet (not
# from v4, so its errors differ): the 20-epoch v3 recipe with a different seed, a scene in the
# replicated padding of half of the crops, a face part covered on 20 %, ±15°, EMA of the weights.
PRESETS["expression-member"] = replace(
    PRESETS["default-expression"], name="expression-member", epochs=20, ema_decay=0.998, tta_flip=True,
    augment=Augment(flip=True, rotate=15.0, shift=0.06, scale=0.08, context=0.5,
                    context_source="../shared/data/nus-saliency/stimuli", parts=0.2),
    notes="MobileNetV2 (ImageNet), 96 px gray FER+ crops, soft targets, AdamW lr 1e-3 + cosine, 20 "
          "epochs, flip, ±15°, ±6 % shift, ±8 % zoom, a scene photo in the replicated padding of half "
          "of the crops, a face part covered on 20 %, EMA 0.998; flip TTA at evaluation. Trained to be "
          "averaged with default-expression v4 (salface ensemble).")

# Session 12: session 11's trial showed the member gaining where its augmentation pointed (face
# parts) and losing on photo damage it never saw; session 9 had trained with both for only 8
# epochs. This is the member's 20-epoch recipe with both: the photo-like damage as well, ±20°, a
# face part covered on 30 % of the crops. A single network, so the runtime cost is v4's.
PRESETS["expression-wild"] = replace(
    PRESETS["expression-member"], name="expression-wild",
    augment=replace(PRESETS["expression-member"].augment, rotate=20.0, scale=0.10, wild=True, parts=0.3),
    notes="MobileNetV2 (ImageNet), 96 px gray FER+ crops, soft targets, AdamW lr 1e-3 + cosine, 20 "
          "epochs, flip, ±20°, ±6 % shift, ±10 % zoom, photo-like damage (salface.augment), a scene "
          "photo in the replicated padding of half of the crops, a face part covered on 30 %, EMA "
          "0.998; flip TTA at evaluation.")

# Session 12, second try: the v4 + member ensemble (87.25 % on val) as a teacher. `salface cache
# distill` mixes its answers on the clean train crops (T = 2, weight 0.5) into the FER+ vote
# targets; v4 is fine-tuned on them with expression-wild's augmentation, so that one network at
# v4's cost learns the ensemble's answers on damaged and partly covered faces.
PRESETS["expression-distill"] = replace(
    PRESETS["robust-expression-no-context"], name="expression-distill", ema_decay=0.998, tta_flip=True,
    augment=PRESETS["expression-wild"].augment,
    init="bundled:default-expression",
    init_sha256="90e9b581a4af5761ccf315683154369b9fd15bfd091b2e4b60974845d00bcd17",
    notes="default-expression v4 (shipped weights) fine-tuned 5 epochs at lr 3e-4 on a distilled cache "
          "(salface cache distill: targets half FER+ votes, half the v4 + expression-member ensemble "
          "at T = 2) with expression-wild's augmentation; EMA 0.998; flip TTA at evaluation.")
PRESETS["expression-distill-clean"] = replace(
    PRESETS["expression-distill"], name="expression-distill-clean",
    augment=PRESETS["expression-member"].augment,
    notes=PRESETS["expression-distill"].notes.replace("expression-wild's augmentation",
                                                      "expression-member's augmentation (no photo damage)"))
# Session 16: session 15 ran the shipped age/gender members on crops levelled by YuNet's eye
# landmarks. Tilted faces gained a lot, upright test faces lost a little (the networks had only
# seen UTKFace's own alignment). The members trained on a little further on levelled crops
# (`salface cache crops --align`), so that training and use match; the paired control is session
# 14's audit-*-noisy runs: the same init, recipe and epochs on the upright crops.
PRESETS["level-age-gender-m"] = replace(
    PRESETS["audit-age-gender-m"], name="level-age-gender-m",
    notes="age-gender-ensemble's MobileNetV2 member (default-age) trained 3 more epochs at lr 1e-4 "
          "with its own recipe (robust-age-gender-fair), meant for a cache of eye-levelled crops "
          "(`salface cache crops --align`); the run's config then levels at use.")
PRESETS["level-age-gender-e"] = replace(
    PRESETS["audit-age-gender-e"], name="level-age-gender-e",
    notes="age-gender-ensemble's EdgeFace-XS member (edge-ag-96) trained 3 more epochs at lr 1e-4 "
          "with its own recipe (edge-age-gender), meant for a cache of eye-levelled crops "
          "(`salface cache crops --align`); the run's config then levels at use.")
# The same for expression: v4 trained on with its robust half's recipe, on levelled FER+ crops.
PRESETS["level-expression"] = replace(
    PRESETS["robust-expression-parts"], name="level-expression", epochs=3, lr=1e-4,
    init=PRESETS["robust-expression-v4ft"].init, init_sha256=PRESETS["robust-expression-v4ft"].init_sha256,
    notes="default-expression v4 (shipped weights) trained 3 more epochs at lr 1e-4 with the recipe of "
          "its robust half (robust-expression-parts: photo-like damage, scene context, face parts), "
          "meant for a cache of eye-levelled crops (`salface cache crops --align`).")

# Session 19: UTKFace's file names give the age in years, which the 8 groups throw away (a 21- and
# a 31-year-old are both "25-32"). The one-stage EdgeFace recipe with a training-only head on the
# age in years beside the group head (sampling.AgeYearsLoss; never shipped); its paired control is
# edge-age-gender-long itself, same seed.
PRESETS["edge-age-gender-years"] = replace(
    PRESETS["edge-age-gender-long"], name="edge-age-gender-years", age_years=0.5, age_years_sigma=2.0,
    notes=PRESETS["edge-age-gender-long"].notes + " Plus a training-only head on the age in years "
          "(UTKFace file names; Gaussian target sigma 2 years + |expected - true| / 10, weight 0.5).")

# The head's loss (about 3.5 nats) outweighed the group and gender losses (about 1.5) at weight
# 0.5, and val gender fell behind the control's epoch by epoch: the same with a lighter weight.
PRESETS["edge-age-gender-years-light"] = replace(
    PRESETS["edge-age-gender-years"], name="edge-age-gender-years-light", age_years=0.15,
    notes=PRESETS["edge-age-gender-long"].notes + " Plus a training-only head on the age in years "
          "(UTKFace file names; Gaussian target sigma 2 years + |expected - true| / 10, weight 0.15).")


FAMILIES: dict[str, dict[tuple[str, ...], str]] = {
    "saf-bage": {AG: "saf-bage-age-gender", EX: "saf-bage-expression"},
    "vegac": {AG: "vegac-age-gender", EX: "vegac-expression"},
    "default": {AG: "default-age-gender", EX: "default-expression"},
    "wild": {AG: "wild-age-gender"},
    "robust": {AG: "robust-age-gender", EX: "robust-expression"},
}


def preset_names() -> list[str]:
    return sorted(FAMILIES) + sorted(PRESETS)


def get_preset(name: str, tasks: tuple[str, ...] | None = None) -> Preset:
    """Preset ``name`` (a full name, or a family name resolved by ``tasks``)."""
    if name in PRESETS:
        return PRESETS[name]
    if name in FAMILIES:
        fam = FAMILIES[name]
        if tasks is None:
            raise ValueError(f"preset family {name!r} needs the tasks to pick a variant: {sorted(fam.values())}")
        key = tuple(tasks)
        for k, v in fam.items():
            if set(k) == set(key):
                return PRESETS[v]
        # a single task of a multi-task variant: same recipe, fewer heads
        for k, v in fam.items():
            if set(key) <= set(k):
                return replace(PRESETS[v], tasks=key, name=f"{v}-{'-'.join(key)}")
        raise ValueError(f"preset family {name!r} has no variant for tasks {key}")
    raise ValueError(f"unknown preset {name!r}; known: {preset_names()}")
