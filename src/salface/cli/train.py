"""``salface cache …``, ``salface train``, ``salface evaluate`` and ``salface ship``: thin shells
over :mod:`salface.training.cache`, :mod:`salface.training.train` and :mod:`salface.evaluation`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from ..utils import command_line


def register(app: typer.Typer) -> None:
    cache_app = typer.Typer(help="Build training caches: face crops once, saliency maps once.",
                            no_args_is_help=True)
    app.add_typer(cache_app, name="cache")

    @cache_app.command("crops")
    def cache_crops(
        split_file: Path = typer.Option(..., "--split-file", help="Split file (JSONL from `salface data split`) listing the samples and their split."),
        out: Path = typer.Option(..., "--out", help="Cache folder to create (or resume)."),
        size: int = typer.Option(112, "--size", help="Crop side in pixels (= the model's input size)."),
        margin: float = typer.Option(0.30, "--margin", help="Box margin, as in salface.crop (0.30 = 30 %)."),
        detector: str = typer.Option("yunet", "--detector", help="Face detector run on every image ('none': use the dataset box)."),
        detector_model: Optional[Path] = typer.Option(None, "--detector-model", help="Detector model file (e.g. the YuNet .onnx), if not installed."),
        color: str = typer.Option("rgb", "--color", help="'rgb', or 'gray' (luminance replicated to 3 channels)."),
        tasks: str = typer.Option("", "--tasks", help="Comma-separated tasks to keep labels for (default: all in the split file)."),
        align: bool = typer.Option(False, "--align/--no-align", help="Rotate crops so the eyes are level."),
        crop_mode: str = typer.Option("margin", "--crop-mode", help="'margin' (the papers' enlarged box) or 'arcface' (five-landmark similarity alignment to the ArcFace template; --margin is then an extra margin, usually 0; faces without landmarks fall back to the 30 % margin crop)."),
    ) -> None:
        """Detect and crop every sample of a split file once into a cache folder."""
        from ..training.cache import build_crop_cache, samples_from_split_file, write_soft_targets

        samples, names = samples_from_split_file(split_file)
        kw = {"model_path": str(detector_model)} if detector_model else {}
        cc = build_crop_cache(samples, out, size=size, margin=margin, detector=detector, color=color,
                              tasks=tuple(t for t in tasks.split(",") if t) or None, splits=names,
                              align=align, detector_kwargs=kw, crop_mode=crop_mode)
        soft = write_soft_targets(out, samples)
        typer.echo(f"{out}: {len(cc)} crops, detection rate {cc.meta['detection_rate']:.4f}"
                   + "".join(f", {n} {t} label distributions" for t, n in soft.items()))

    @cache_app.command("saliency")
    def cache_saliency(
        cache: Path = typer.Argument(..., help="Crop cache folder."),
        saliency: str = typer.Option("mlnet", "--saliency", help="Saliency model name (see `salface saliency --help`)."),
        batch: int = typer.Option(64, "--batch", help="Crops per saliency batch."),
    ) -> None:
        """Compute saliency maps for every cached crop (resumable)."""
        from ..training.cache import build_saliency_cache

        m = build_saliency_cache(cache, saliency, batch=batch)
        typer.echo(f"{cache}: {m.shape[0]} {saliency} maps")

    @cache_app.command("frame")
    def cache_frame(
        cache: Path = typer.Argument(..., help="Crop cache folder."),
        split: str = typer.Option("train", "--split", help="Which split's photos to measure (train, val, test or all)."),
        limit: int = typer.Option(0, "--limit", help="Measure a seeded random subset of this many photos (0: all)."),
        out: Optional[Path] = typer.Option(None, "--out", help="JSON file to write the frame and its quantiles to."),
    ) -> None:
        """Measure where the cache's photos end around the face (the source frame, in box units)."""
        from ..training.framing import measure_cache_frames

        st = measure_cache_frames(cache, split=None if split == "all" else split, limit=limit)
        d = {"cache": str(cache), "split": split, "command": command_line(), **st.to_dict()}
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(d, indent=1) + "\n")
        typer.echo(json.dumps(d))

    @cache_app.command("splits")
    def cache_splits(
        cache: Path = typer.Argument(..., help="Crop cache folder."),
        split_file: Path = typer.Option(..., "--split-file", help="Split file whose split assignment to apply."),
    ) -> None:
        """Re-assign a cache's train/val/test membership from a split file (no recomputation)."""
        from ..training.cache import apply_split_file

        typer.echo(json.dumps(apply_split_file(cache, split_file)))

    @cache_app.command("targets")
    def cache_targets(
        cache: Path = typer.Argument(..., help="Crop cache folder."),
        split_file: Path = typer.Option(..., "--split-file", help="Split file the cache was built from."),
    ) -> None:
        """(Re)write a cache's label distributions (FER+ votes) from its split file, without recropping."""
        from ..training.cache import samples_from_split_file, write_soft_targets

        samples, _ = samples_from_split_file(split_file)
        typer.echo(json.dumps(write_soft_targets(cache, samples)))

    @cache_app.command("distill")
    def cache_distill(
        cache: Path = typer.Argument(..., help="Source crop cache folder."),
        teacher: Path = typer.Option(..., "--teacher", help="Teacher: a training run or `salface ensemble` folder."),
        out: Path = typer.Option(..., "--out", help="New cache folder (links the source's files)."),
        task: str = typer.Option(..., "--task", help="Task whose targets get the teacher's answers."),
        weight: float = typer.Option(0.5, "--weight", help="Teacher's share of each train target."),
        temperature: float = typer.Option(2.0, "--temperature", help="Softmax temperature of the teacher (> 1 softens)."),
        tta: Optional[bool] = typer.Option(None, "--tta/--no-tta", help="Teacher's flip TTA (default: its preset's)."),
        threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads (default: all cores)."),
    ) -> None:
        """A copy of a cache whose train targets mix in a teacher's answers (distillation)."""
        from ..training.distill import distill_cache

        r = distill_cache(cache, teacher, out, task=task, weight=weight, temperature=temperature,
                          tta=tta, threads=threads, command=command_line())
        typer.echo(json.dumps(r, indent=1))

    @cache_app.command("audit")
    def cache_audit(
        cache: Path = typer.Argument(..., help="Source crop cache folder."),
        reference: Path = typer.Option(..., "--reference", help="Reference model: a training run or `salface ensemble` folder."),
        out: Path = typer.Option(..., "--out", help="New cache folder (links the source's files)."),
        task: str = typer.Option(..., "--task", help="Task whose train labels are audited."),
        margin: float = typer.Option(1.5, "--margin", help="Flag a train label when the reference's answer beats it by more than this in log-probability."),
        tta: Optional[bool] = typer.Option(None, "--tta/--no-tta", help="Reference's flip TTA (default: its preset's)."),
        threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads (default: all cores)."),
    ) -> None:
        """A copy of a cache whose train labels that a reference model confidently contradicts are
        marked missing (val and test labels untouched); audit.json lists them for review."""
        from ..training.label_audit import audit_cache

        r = audit_cache(cache, reference, out, task=task, margin=margin, tta=tta, threads=threads,
                        command=command_line())
        summary = {k: v for k, v in r.items() if k != "faces"}
        typer.echo(json.dumps(summary, indent=1))

    @cache_app.command("pack")
    def cache_pack(
        cache: Path = typer.Argument(..., help="Crop cache folder."),
        out: Path = typer.Option(..., "--out", help="Pack file to write (.npz)."),
        subset: str = typer.Option("", "--subset", help="Keep some samples per split, drawn with seed 0 as the experiments draw them, e.g. 'train=5000,val=1000' (default: all)."),
        codec: str = typer.Option("jpeg", "--codec", help="png (lossless), jpeg or webp (lossy)."),
        quality: int = typer.Option(95, "--quality", help="JPEG/WebP quality."),
    ) -> None:
        """Pack a crop cache (or a subset) into one compact file, to carry it to another machine."""
        from ..training.cache import open_crop_cache, pack_cache
        from ..experiments import subset_index

        cc = open_crop_cache(cache)
        index = None
        if subset:
            limits: dict = {"train": None, "val": None, "test": None}
            for part in subset.split(","):
                k, _, v = part.partition("=")
                if k.strip() not in limits or not v.strip().isdigit():
                    raise typer.BadParameter(f"--subset: expected split=count, got {part!r}")
                limits[k.strip()] = int(v)
            index = subset_index(cc, limits)
        r = pack_cache(cc, out, index=index, codec=codec, quality=quality)
        typer.echo(json.dumps(r))

    @cache_app.command("unpack")
    def cache_unpack(
        pack: Path = typer.Argument(..., help="Pack file (`salface cache pack`)."),
        out: Path = typer.Option(..., "--out", help="Crop cache folder to create."),
    ) -> None:
        """Turn a pack back into a crop cache folder (checks the decoded pixels' SHA-256)."""
        from ..training.cache import unpack_cache

        cc = unpack_cache(pack, out)
        info = cc.meta["pack"]
        typer.echo(f"{out}: {len(cc)} crops, key {cc.meta['key'][:12]}, {info['codec']}"
                   f"{'' if info['lossless'] else ' q' + str(info['quality'])}, decoded pixels "
                   f"{'identical to' if info['decoded_match'] else 'DIFFER from'} the packing machine's")

    @app.command("train")
    def train_cmd(
        cache: Path = typer.Option(..., "--cache", help="Crop cache folder (`salface cache crops`)."),
        preset: str = typer.Option("default", "--preset", help="Recipe: default, saf-bage, vegac, or a full preset name."),
        out: Path = typer.Option(..., "--out", help="Run folder for checkpoints and metrics (e.g. runs/<name>)."),
        epochs: Optional[int] = typer.Option(None, "--epochs", help="Override the preset's number of epochs."),
        seed: int = typer.Option(0, "--seed", help="Random seed (shuffling, augmentation, dropout, init)."),
        resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last epoch."),
        device: str = typer.Option("cpu", "--device", help="'cpu' or 'cuda' (or 'cuda:N')."),
        saliency: Optional[str] = typer.Option(None, "--saliency", help="Saliency model for reweighting, or 'none' (default: the preset's)."),
        ratio: Optional[float] = typer.Option(None, "--ratio", help="Reweighted ratio r in [0, 1] (default: the preset's)."),
        batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Override the preset's batch size."),
        lr: Optional[float] = typer.Option(None, "--lr", help="Override the preset's learning rate."),
        threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads (default: all cores)."),
        pretrained: Optional[bool] = typer.Option(None, "--pretrained/--scratch", help="Start from ImageNet weights or from scratch (default: the preset's)."),
        stop_after: Optional[int] = typer.Option(None, "--stop-after", help="Stop after this many epochs in all (continue later with --resume); the schedule still spans --epochs."),
        tasks: str = typer.Option("", "--tasks", help="Comma-separated tasks to train (default: all the cache has), e.g. 'gender' for a single-head network."),
        max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Batches per epoch (a cheaper run: each epoch sees this many batches of its shuffled or balanced draw)."),
    ) -> None:
        """Train a classifier on a crop cache; model selection on its val split."""
        from ..training.train import train

        r = train(preset, cache, out_dir=out, epochs=epochs, seed=seed, resume=resume, device=device,
                  saliency=saliency, ratio=ratio, batch_size=batch_size, lr=lr, threads=threads,
                  pretrained=pretrained, stop_after=stop_after, max_steps=max_steps,
                  tasks=tuple(t for t in tasks.split(",") if t) or None)
        (Path(out) / "command.txt").write_text(command_line() + "\n")
        typer.echo(f"best val score {r.best_score:.4f} at epoch {r.best_epoch}; weights in {out}/best.safetensors")

    @app.command("soup")
    def soup_cmd(
        run_a: Path = typer.Argument(..., help="Run A (α = 0), e.g. the starting model."),
        run_b: Path = typer.Argument(..., help="Run B (α = 1), e.g. the model fine-tuned from A."),
        alpha: float = typer.Option(..., "--alpha", help="Weight of B in (1 − α)·A + α·B."),
        out: Path = typer.Option(..., "--out", help="Run folder for the interpolated model."),
    ) -> None:
        """Interpolate two runs' weights (WiSE-FT): a run folder that evaluate and ship take."""
        from ..training.soup import interpolate_runs

        try:
            p = interpolate_runs(run_a, run_b, alpha, out)
        except (ValueError, FileNotFoundError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2)
        (p / "command.txt").write_text(command_line() + "\n")
        typer.echo(f"{p}: (1 − {alpha})·{run_a} + {alpha}·{run_b}")

    @app.command("ensemble")
    def ensemble_cmd(
        runs: list[Path] = typer.Argument(..., help="Two or more training runs on the same crop (first: whose input normalisation the ensemble takes; a run at another input size gets the crop resized)."),
        out: Path = typer.Option(..., "--out", help="Run folder for the ensemble."),
        tasks: str = typer.Option("", "--tasks", help="Comma-separated tasks (default: all that every run answers)."),
        weights: str = typer.Option("", "--weights", help="Comma-separated member weights (default: equal)."),
        input_size: int = typer.Option(0, "--input-size", help="The ensemble's crop in pixels (default: the largest member's); members at another size get it resized in the graph."),
    ) -> None:
        """Average several runs' answers (mean log-softmax) as one network: a run folder that evaluate and ship take."""
        from ..training.ensemble import ensemble_runs

        try:
            w = [float(x) for x in weights.split(",")] if weights else None
            p = ensemble_runs(runs, out, tasks=[t for t in tasks.split(",") if t] or None, weights=w,
                              input_size=input_size or None)
        except (ValueError, FileNotFoundError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2)
        (p / "command.txt").write_text(command_line() + "\n")
        typer.echo(f"{p}: ensemble of {', '.join(str(r) for r in runs)}")

    @app.command("evaluate")
    def evaluate_cmd(
        runs: List[Path] = typer.Argument(..., help="Training run folder(s); several give a side-by-side table."),
        split: str = typer.Option("test", "--split", help="Cache split to evaluate: val or test."),
        which: str = typer.Option("best", "--which", help="Weights: best (by val) or last."),
        tta: Optional[bool] = typer.Option(None, "--tta/--no-tta", help="Flip test-time augmentation (default: the run's preset)."),
        out: Path = typer.Option(Path("docs/benchmarks"), "--out", help="Folder for the reports."),
        cache: Optional[Path] = typer.Option(None, "--cache", help="Crop cache (default: the run's own)."),
        threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads (default: all cores)."),
        calibrate: bool = typer.Option(True, "--calibrate/--no-calibrate", help="Fit a temperature per task on val and report ECE / NLL / Brier before and after it (not for --split val); `salface ship` ships it."),
        prior_correction: str = typer.Option("", "--prior-correction", help="Comma-separated tasks whose logits get a prior correction (−τ·log of the train split's class shares, τ chosen on val for the best mean per-class accuracy at ≤ 0.5 points of accuracy); `salface ship` ships it."),
    ) -> None:
        """Accuracy, per-class accuracy, age 1-off, calibration, confusion matrices, curves and a Markdown report."""
        from ..evaluation.reports import read_per_image, write_comparison
        from ..evaluation.runs import evaluate_run

        cmd = command_line()
        results, per_image = [], []
        for run in runs:
            res, md = evaluate_run(run, split=split, which=which, tta=tta, out_dir=out, cache=cache,
                                   command=cmd, threads=threads, calibrate=calibrate,
                                   prior_correction=tuple(t for t in prior_correction.split(",") if t))
            results.append((run.name, res))
            per_image.append(read_per_image(md.with_suffix(".json")))
            typer.echo(f"{run.name}: " + ", ".join(f"{t} {m['accuracy']:.4f}" for t, m in res.items())
                       + f" → {md}")
        if len(results) > 1:
            p = write_comparison(results, out, split=split, command=cmd, per_image=per_image)
            typer.echo(f"comparison (paired tests against {results[0][0]}) → {p}")

    @app.command("evaluate-pipeline")
    def evaluate_pipeline_cmd(
        split_file: Path = typer.Option(..., "--split-file", help="Split file listing the labelled images."),
        split: str = typer.Option("test", "--split", help="Which split of the file to use."),
        tasks: str = typer.Option(..., "--tasks", help="Comma-separated tasks to judge, e.g. expression or age,gender."),
        model: str = typer.Option("default", "--model", help="Bundled model name, or 'default'."),
        detector_model: Optional[Path] = typer.Option(None, "--detector-model", help="YuNet .onnx file, if not installed."),
        detector: str = typer.Option("yunet", "--detector", help="Face detector (yunet, the one the shipped models were trained on; blazeface; auto; ...)."),
        limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N images of the split."),
        out: Path = typer.Option(Path("docs/benchmarks"), "--out", help="Folder for the report."),
        name: str = typer.Option("pipeline", "--name", help="Report file stem."),
        fast: bool = typer.Option(False, "--fast", help="Judge the fast profile of the default models (`salface analyze --fast`)."),
        source_frame: bool = typer.Option(False, "--source-frame/--no-source-frame", help="Crop as if each photo ended at the model's training frame (`Analyzer(source_frame=...)`)."),
    ) -> None:
        """Judge shipped models on images that go through `analyze` end to end (detect, crop, saliency, classify)."""
        from ..data.splits import read_split
        from ..evaluation.pipeline import evaluate_pipeline
        from ..evaluation.reports import write_report
        from ..pipeline import Analyzer

        samples = read_split(split_file)["val" if split == "valid" else split][:limit]
        tl = tuple(t for t in tasks.split(",") if t)
        an = Analyzer(detector=detector, model=model, tasks=tl, fast=fast, source_frame=source_frame,
                      detector_options={"model_path": str(detector_model)} if detector_model else None)
        res = evaluate_pipeline(samples, tl, an, progress=True)
        det = res.pop("_detection")
        e2e = {t: f"{100 * m['end_to_end_accuracy']:.2f} %" for t, m in res.items()}
        md = write_report(out, f"{name}: analyze end to end on {split_file.name} {split}", res,
                          command=command_line(), stem=name,
                          extra={"detector": an.detector.name, "images": det["images"], "faces found": f"{det['with_face']} ({100 * det['rate']:.2f} %)",
                                 "accuracy counting no-face images as errors": e2e,
                                 "accuracy below": "over images where the detector found the face"})
        typer.echo(f"{json.dumps(e2e)} → {md}")

    @app.command("ship")
    def ship_cmd(
        run: Path = typer.Argument(..., help="Training run folder."),
        name: str = typer.Option(..., "--name", help="Bundled model name, e.g. default-age-gender."),
        report: Path = typer.Option(..., "--report", help="The run's evaluation JSON (from `salface evaluate`) whose metrics go in the manifest."),
        data: str = typer.Option(..., "--data", help="Training data description for the manifest."),
        license: str = typer.Option("weights: non-commercial research only (trained on data with those terms)", "--license", help="Licence terms of the weights."),
    ) -> None:
        """Bundle a run's best weights as safetensors + manifest entry (SHA-256)."""
        from ..evaluation.ship import ship_run

        p = ship_run(run, name=name, report=report, data=data, license=license,
                     command=(Path(run) / "command.txt").read_text().strip()
                     if (Path(run) / "command.txt").exists() else "")
        typer.echo(f"bundled {name} → {p}")
