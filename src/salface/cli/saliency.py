"""``salface train-saliency`` and ``salface evaluate-saliency``: thin shells over
:mod:`salface.saliency.train` and :mod:`salface.saliency.evaluate`."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from ..utils import command_line

DEFAULT_DATA = "../shared/data/nus-saliency"


class Backbone(str, Enum):
    mobilenet_v2 = "mobilenet_v2"
    vgg16 = "vgg16"


def train_saliency(
    data: Path = typer.Option(DEFAULT_DATA, "--data", help="NUS saliency folder holding "
                              "fixations.mat, imgInfo.mat and stimuli/."),
    out: Path = typer.Option(Path("runs/saliency/nus"), "--out", help="Folder for the feature "
                             "cache, checkpoints (last.pt every epoch, best.pt by val CC) and "
                             "history.json."),
    epochs: int = typer.Option(20, "--epochs", min=1, help="Passes over the 700 training samples "
                               "(350 train images and their mirrors)."),
    seed: int = typer.Option(0, "--seed", help="Seed for initialisation and batch order."),
    resume: bool = typer.Option(False, "--resume", help="Continue from <out>/last.pt."),
    backbone: Backbone = typer.Option(Backbone.mobilenet_v2, "--backbone", help="Frozen feature "
                                      "extractor: mobilenet_v2 (ImageNet weights from torchvision) "
                                      "or vgg16 (needs torchvision's VGG-16 ImageNet weights)."),
    size: int = typer.Option(256, "--size", min=64, help="Training scenes are resized to "
                             "size×size (multiple of 32)."),
    bundle_as: str = typer.Option("", "--bundle-as", help="After training, write the best "
                                  "checkpoint into the package's bundled models under this name "
                                  "(safetensors + manifest entry). Empty: do not bundle."),
    bundle_only: bool = typer.Option(False, "--bundle-only", help="Skip training: bundle "
                                     "<out>/best.pt as --bundle-as."),
    blur: float = typer.Option(0.0, "--blur", min=0.0, help="Post-processing stored with the "
                               "bundled model: Gaussian blur of the map, σ as a fraction of its "
                               "longer side (choose it on val: benchmarks/saliency_postprocess_val.py)."),
    floor: float = typer.Option(0.0, "--floor", min=0.0, help="Post-processing stored with the "
                                "bundled model: floor added to the [0, 1] map, (m + f) / (1 + f)."),
    training_command: str = typer.Option("", "--training-command", help="With --bundle-only: "
                                         "the command that trained the checkpoint, recorded in "
                                         "the manifest."),
    metrics_json: Path | None = typer.Option(None, "--metrics-json", help="With --bundle-only: "
                                             "an evaluate-saliency report (nus_test.json) whose "
                                             "`mlnet` means are recorded in the manifest."),
) -> None:
    """Train ML-Net (frozen backbone, encoder + learned prior) on the NUS fixations."""
    from ..saliency.train import TrainSettings, bundle_checkpoint, train_mlnet

    if size % 32:
        raise typer.BadParameter(f"--size must be a multiple of 32, got {size}")
    if bundle_only:
        if not bundle_as:
            raise typer.BadParameter("--bundle-only needs --bundle-as NAME")
        extra = None
        if metrics_json is not None:
            import json

            rep = json.loads(metrics_json.read_text(encoding="utf-8"))
            if "mlnet" not in rep.get("models", {}):
                raise typer.BadParameter(f"{metrics_json} holds no `mlnet` results")
            extra = {f"{rep['split']}_{k}": round(v["mean"], 4) for k, v in rep["models"]["mlnet"].items()}
        p = bundle_checkpoint(out / "best.pt", bundle_as, command=command_line(), blur=blur,
                              floor=floor, training_command=training_command or None,
                              extra_metrics=extra)
        typer.echo(f"bundled {out / 'best.pt'} as {bundle_as!r}: {p}")
        return
    settings = TrainSettings(data_dir=str(data), out_dir=str(out), epochs=epochs, seed=seed,
                             resume=resume, backbone=backbone.value, size=size)
    result = train_mlnet(settings, log=lambda s: typer.echo(s))
    typer.echo(f"best epoch {result.best_epoch}: " +
               ", ".join(f"{k} {v:.3f}" for k, v in result.best_val.items()) +
               f" ({result.seconds:.0f} s); checkpoint {result.checkpoint}")
    if bundle_as:
        p = bundle_checkpoint(result.checkpoint, bundle_as, command=command_line(), blur=blur,
                              floor=floor)
        typer.echo(f"bundled as {bundle_as!r}: {p}")


def evaluate_saliency(
    data: Path = typer.Option(DEFAULT_DATA, "--data", help="NUS saliency folder (fixations.mat, "
                              "imgInfo.mat, stimuli/)."),
    models: str = typer.Option("centre,spectral-residual,frequency-tuned,mlnet", "--models",
                               help="Comma-separated saliency model names (see `available_saliency`)."),
    split: str = typer.Option("test", "--split", help="Which part of the fixed split to score: "
                              "train, val or test."),
    checkpoint: Path | None = typer.Option(None, "--checkpoint", help="Score this training "
                                           "checkpoint (best.pt) as `mlnet` instead of the "
                                           "bundled weights."),
    out: Path = typer.Option(Path("docs/saliency"), "--out", help="Folder for the JSON report "
                             "and Markdown table (nus_<split>.json / .md)."),
    max_side: int = typer.Option(512, "--max-side", min=32, help="Images are scored with their "
                                 "longer side resized to at most this many pixels."),
) -> None:
    """Score saliency models with AUC-Judd, shuffled AUC, NSS, CC, KL and SIM on NUS."""
    from ..saliency import get_saliency
    from ..saliency.evaluate import evaluate_models, markdown_table, write_report
    from ..saliency.train import load_checkpoint

    if split not in ("train", "val", "test"):
        raise typer.BadParameter(f"--split must be train, val or test, got {split!r}")
    chosen = {}
    for name in [m.strip() for m in models.split(",") if m.strip()]:
        if name == "mlnet" and checkpoint is not None:
            chosen[name] = load_checkpoint(checkpoint, input_size=256)
        elif name == "mlnet":
            chosen[name] = get_saliency("mlnet", scene=True)
        else:
            chosen[name] = get_saliency(name)
    report = evaluate_models(chosen, data, split=split, max_side=max_side,
                             log=lambda s: typer.echo(s))
    report["command"] = command_line()
    jp, mp = write_report(report, out, stem=f"nus_{split}")
    typer.echo(markdown_table(report))
    typer.echo(f"written {jp} and {mp}")


def saliency_faces(
    data: Path = typer.Option(Path("../shared/data/utkface"), "--data", help="Folder of face "
                              "photos (*.jpg; UTKFace layout)."),
    n: int = typer.Option(500, "--n", min=1, help="How many images to draw (fixed seed)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the image draw."),
    size: int = typer.Option(112, "--size", min=32, help="Crop size in pixels."),
    yunet: Path | None = typer.Option(None, "--yunet", help="Path to the YuNet ONNX file "
                                      "(default: the installed copy, `salface fetch yunet`)."),
    models: str = typer.Option("mlnet,spectral-residual,frequency-tuned,centre", "--models",
                               help="Comma-separated saliency model names to measure; "
                               "`mlnet@224` runs ML-Net on crops resized to 224 px."),
    out: Path = typer.Option(Path("docs/saliency"), "--out", help="Folder for face_regions.json "
                             "and face_regions.md."),
    figure_examples: int = typer.Option(0, "--figure-examples", min=0, help="Also save "
                                        "figure2_<model>.png (crop | map | reweighted at r = 0.3) "
                                        "for skimage's astronaut plus this many of the drawn faces."),
) -> None:
    """Share of each saliency model's mass on the eyes, nose and mouth of detected faces,
    against a uniform map (regions from YuNet's five landmarks)."""
    import json

    from ..saliency import get_saliency
    from ..saliency.faces import REGIONS, face_shares, utkface_samples

    chosen = {}
    for spec in [m.strip() for m in models.split(",") if m.strip()]:
        name, _, at = spec.partition("@")  # "mlnet@224": ML-Net on crops resized to 224 px
        if at and name != "mlnet":
            raise typer.BadParameter(f"only mlnet takes an @input-size, got {spec!r}")
        chosen[spec] = get_saliency(name, input_size=int(at)) if at else get_saliency(name)
    samples = utkface_samples(data, n=n, seed=seed, size=size, yunet_model=yunet,
                              log=lambda s: typer.echo(s))
    res = face_shares(samples, chosen)
    res.update({"data": str(data), "n_drawn": n, "seed": seed, "crop_size": size,
                "detector": "yunet (highest-scoring face)", "command": command_line()})
    out.mkdir(parents=True, exist_ok=True)
    (out / "face_regions.json").write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    lines = [f"# Saliency mass on facial features ({res['n_faces']} faces)", "",
             f"Command: `{res['command']}`. Share of the map's total mass inside each region "
             "(mean ± std over faces); lift = share / uniform share.", "",
             "| model | " + " | ".join(REGIONS) + " | lift (features) |",
             "|---|" + "---|" * (len(REGIONS) + 1)]
    for name, regs in res["share"].items():
        lift = res["lift"].get(name, {}).get("features", 1.0)
        lines.append(f"| {name} | " + " | ".join(f"{regs[r]['mean']:.3f} ± {regs[r]['std']:.3f}"
                                                 for r in REGIONS) + f" | {lift:.2f} |")
    md = "\n".join(lines) + "\n"
    (out / "face_regions.md").write_text(md, encoding="utf-8")
    typer.echo(md)
    if figure_examples:
        from ..saliency.faces import astronaut_sample, figure2

        rows = [astronaut_sample(size=size, yunet_model=yunet)] + samples[:figure_examples]
        for name, model in chosen.items():
            p = figure2(rows, model, out / f"figure2_{name.replace('@', '-at-')}.png",
                        title=f"{name}: crop | map | reweighted (r = 0.3)")
            typer.echo(f"written {p}")


def register(app: typer.Typer) -> None:
    app.command("train-saliency")(train_saliency)
    app.command("evaluate-saliency")(evaluate_saliency)
    app.command("saliency-faces")(saliency_faces)
