"""``salface experiment …`` (the papers' experiments, one command each) and ``salface explain``
(per-face panels with class activation maps). Thin shells over :mod:`salface.experiments` and
:mod:`salface.explain`.

Options shared by every experiment (sizes, seeds, folders, device) go right after
``experiment``: ``salface experiment --epochs 3 --seeds 0,1 ratio-sweep``.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..utils import command_line


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated integers, got {text!r}") from None


def _limit(v: Optional[int]) -> Optional[int]:
    """CLI: absent → the experiment's default (-1); 0 → the whole split (None)."""
    if v is None:
        return -1
    return None if v == 0 else v


def register(app: typer.Typer) -> None:
    exp = typer.Typer(help="Rerun the papers' experiments on the data here (resumable; results under "
                           "docs/experiments/).", no_args_is_help=True)
    app.add_typer(exp, name="experiment")

    @exp.callback()
    def common(
        ctx: typer.Context,
        runs_dir: Path = typer.Option(Path("runs/experiments"), "--runs-dir", help="Where the training runs go (finished runs are reused)."),
        out: Path = typer.Option(Path("docs/experiments"), "--out", help="Where the reports (JSON, Markdown, PNG) go."),
        utk_cache: Path = typer.Option(Path("cache/crops/utkface-96-rgb"), "--utk-cache", help="UTKFace crop cache (`salface cache crops`)."),
        fer_cache: Path = typer.Option(Path("cache/crops/ferplus-96-gray"), "--fer-cache", help="FER+ crop cache."),
        cache_dir: Path = typer.Option(Path("cache/crops"), "--cache-dir", help="Where the Adience / AffectNet caches are built."),
        seeds: str = typer.Option("0,1,2", "--seeds", help="Comma-separated seeds (ratio sweep and backbones use the first)."),
        epochs: Optional[int] = typer.Option(None, "--epochs", help="Epochs per run (default: 5 UTKFace, 6 FER+; the preset's for the protocols)."),
        train_limit: Optional[int] = typer.Option(None, "--train-limit", help="Train faces per run (default 5000 UTKFace / 8000 FER+; 0 = all)."),
        val_limit: Optional[int] = typer.Option(None, "--val-limit", help="Val faces (default 1000; 0 = all)."),
        test_limit: Optional[int] = typer.Option(None, "--test-limit", help="Test faces (default: all = 0)."),
        batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Override the recipe's batch size."),
        max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Batches per epoch (smoke runs)."),
        saliency: str = typer.Option("mlnet", "--saliency", help="The saliency model of the 'with saliency' arm."),
        pretrained: Optional[bool] = typer.Option(None, "--pretrained/--scratch", help="ImageNet start or from scratch (default: the recipe's, where the weights exist)."),
        device: str = typer.Option("auto", "--device", help="'auto' (CUDA when present), 'cpu' or 'cuda'."),
        threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads (default: all cores)."),
        jobs: int = typer.Option(1, "--jobs", min=1, help="Runs trained at once, each in its own process with cores/jobs threads (on 2 CPU cores --jobs 2 trains 1.3–1.6× as many images per second as one two-thread run; benchmarks/train_throughput.py)."),
        tiny: bool = typer.Option(False, "--tiny", help="Smoke run: 24/8/16 faces, 1 epoch of 2 batches, seed 0 (unless given)."),
        quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
    ) -> None:
        from ..experiments import Settings

        kw = dict(runs_dir=runs_dir, out_dir=out, utk_cache=utk_cache, fer_cache=fer_cache, cache_dir=cache_dir,
                  saliency=saliency, device=device, threads=threads, jobs=jobs, pretrained=pretrained,
                  command=command_line())
        given = {"seeds": _ints(seeds) if seeds != "0,1,2" or not tiny else None, "epochs": epochs,
                 "batch_size": batch_size, "max_steps": max_steps}
        limits = {"train_limit": train_limit, "val_limit": val_limit, "test_limit": test_limit}
        if tiny:
            s = Settings.tiny(**kw, **{k: v for k, v in given.items() if v is not None},
                              **{k: _limit(v) for k, v in limits.items() if v is not None})
        else:
            s = Settings(**kw, **{k: v for k, v in given.items() if v is not None},
                         **{k: _limit(v) for k, v in limits.items()})
        if quiet:
            s.progress = False
        ctx.obj = s

    def _guard(fn):
        """Run ``fn``; known failures (a missing cache or model, bad data) become one clear line
        and exit code 2 instead of a traceback."""
        from ..training.cache import CacheError
        from ..data.base import DatasetError
        from ..hub import MissingModelError

        try:
            return fn()
        except (CacheError, MissingModelError, DatasetError, FileNotFoundError, ValueError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None

    def _done(fn) -> None:
        typer.echo(f"report → {_guard(fn)}")

    @exp.command("list")
    def list_cmd() -> None:
        """The experiments and what each answers."""
        from ..experiments import EXPERIMENTS

        for k, v in EXPERIMENTS.items():
            typer.echo(f"{k:16s} {v}")

    @exp.command("plan")
    def plan_cmd(ctx: typer.Context,
                 rate: float = typer.Option(107.0, "--rate", help="Training images/s at 64 px on this machine (scaled by pixel count for other sizes); 107 was measured for FER+ on 2 busy CPU cores.")) -> None:
        """The runs of experiments 1-5, which are done, and the estimated training time."""
        from ..experiments import plan

        p = _guard(lambda: plan(ctx.obj, rate))
        for name, rows in p["experiments"].items():
            typer.echo(f"{name}: {len(rows)} new runs")
            for r in rows:
                typer.echo(f"  {r['status']:>12s}  {r['minutes']:6.1f} min  {r['run']}")
        typer.echo(f"training time: {p['total_minutes'] / 60:.1f} h in all, {p['todo_minutes'] / 60:.1f} h left "
                   f"(at {rate:g} img/s at 64 px; evaluation and saliency maps not included)")

    @exp.command("saliency-onoff")
    def onoff_cmd(ctx: typer.Context,
                  datasets: str = typer.Option("utkface,ferplus", "--datasets", help="utkface (age+gender) and/or ferplus (expression).")) -> None:
        """1. With and without saliency, same recipe and split, every seed; paired tests."""
        from ..experiments import saliency_onoff

        _done(lambda: saliency_onoff(ctx.obj, tuple(d for d in datasets.split(",") if d)))

    @exp.command("ratio-sweep")
    def ratio_cmd(ctx: typer.Context,
                  dataset: str = typer.Option("utkface", "--dataset", help="utkface (gender) or ferplus (expression)."),
                  ratios: str = typer.Option("0,0.1,0.3,0.5,0.7,0.9,1", "--ratios", help="Comma-separated ratios r.")) -> None:
        """2. Reweighted ratio sweep: curves per epoch (SAF-BAGE Figure 3) and test accuracy against r."""
        from ..experiments import ratio_sweep

        try:
            rs = tuple(float(r) for r in ratios.split(",") if r.strip())
        except ValueError:
            raise typer.BadParameter(f"--ratios: expected numbers, got {ratios!r}") from None
        _done(lambda: ratio_sweep(ctx.obj, dataset, rs))

    @exp.command("saliency-source")
    def source_cmd(ctx: typer.Context,
                   sources: str = typer.Option("mlnet,spectral-residual,frequency-tuned,centre,none", "--sources"),
                   dataset: str = typer.Option("utkface", "--dataset"),
                   ratio: float = typer.Option(0.3, "--ratio")) -> None:
        """3. ML-Net against classical saliency, a centre prior and none."""
        from ..experiments import saliency_source

        _done(lambda: saliency_source(ctx.obj, dataset, tuple(x for x in sources.split(",") if x), ratio))

    @exp.command("backbones")
    def backbones_cmd(ctx: typer.Context,
                      names: str = typer.Option("", "--backbones", help="Comma-separated (default: mobilenet_v2, gilnet, alexnet, alexnet_gap, + vgg16 when its weights are cached)."),
                      dataset: str = typer.Option("utkface", "--dataset")) -> None:
        """4. Backbones on gender, with what was pretrained stated."""
        from ..experiments import backbones

        _done(lambda: backbones(ctx.obj, dataset, tuple(x for x in names.split(",") if x) or None))

    @exp.command("cam")
    def cam_cmd(ctx: typer.Context,
                run: List[Path] = typer.Option([], "--run", help="Run folder(s) to explain (default: the experiment-1 and AlexNet-GAP runs)."),
                model: List[str] = typer.Option([], "--model", help="Bundled classifier(s) to explain on the test split of --utk-cache / --fer-cache; the report then goes to cam-shipped/ unless --run is given too."),
                limit: Optional[int] = typer.Option(None, "--limit", help="At most this many test faces per model.")) -> None:
        """5. CAM mass on eyes, nose and mouth against a uniform map, over the test faces."""
        from ..experiments import cam_experiment

        name = "cam-shipped" if model and not run else "cam"
        _done(lambda: cam_experiment(ctx.obj, run or None, limit=limit, models=tuple(model), name=name))

    @exp.command("fairness")
    def fairness_cmd(ctx: typer.Context,
                     run: List[Path] = typer.Option([], "--run", help="Training run folder(s) to add."),
                     shipped: bool = typer.Option(True, "--shipped/--no-shipped", help="Include every bundled classifier.")) -> None:
        """6. Accuracy per UTKFace race, gender and age group; expression per class."""
        from ..experiments import fairness

        _done(lambda: fairness(ctx.obj, run, shipped))

    @exp.command("adience")
    def adience_cmd(ctx: typer.Context,
                    root: Path = typer.Option(..., "--root", help="Adience folder (fold_k_data.txt + aligned/)."),
                    preset: str = typer.Option("saf-bage", "--preset"),
                    size: Optional[int] = typer.Option(None, "--size", help="Input size (default: the preset's)."),
                    detector_model: Optional[Path] = typer.Option(None, "--detector-model", help="YuNet .onnx if not installed.")) -> None:
        """7a. Adience five-fold subject-exclusive protocol: mean ± std over folds, confusion matrices."""
        from ..experiments import adience

        kw = {"model_path": str(detector_model)} if detector_model else None
        _done(lambda: adience(ctx.obj, root, preset=preset, size=size, detector_kwargs=kw))

    @exp.command("affectnet")
    def affectnet_cmd(ctx: typer.Context,
                      train_csv: Path = typer.Option(..., "--train-csv", help="AffectNet training.csv."),
                      val_csv: Path = typer.Option(..., "--val-csv", help="AffectNet validation.csv."),
                      images: Path = typer.Option(..., "--images", help="Manually_Annotated_Images folder."),
                      preset: str = typer.Option("saf-bage", "--preset"),
                      size: Optional[int] = typer.Option(None, "--size"),
                      per_class: int = typer.Option(500, "--per-class", help="Balanced test images per class."),
                      detector_model: Optional[Path] = typer.Option(None, "--detector-model")) -> None:
        """7b. AffectNet with SAF-BAGE's balanced test, with and without saliency."""
        from ..experiments import affectnet

        kw = {"model_path": str(detector_model)} if detector_model else None
        _done(lambda: affectnet(ctx.obj, train_csv, val_csv, images, preset=preset, size=size, per_class=per_class,
                        detector_kwargs=kw))

    @exp.command("heads")
    def heads_cmd(ctx: typer.Context) -> None:
        """One network with age + gender heads against one network per task (UTKFace), every seed."""
        from ..experiments import heads

        _done(lambda: heads(ctx.obj))

    @exp.command("all")
    def all_cmd(ctx: typer.Context) -> None:
        """Experiments 1-5 and the heads comparison (resumable: run it again after an interruption).
        With --jobs N every run of all of them is trained first, N at a time."""
        from ..experiments import (backbone_specs, backbones, cam_experiment, cam_specs, heads, heads_specs,
                                   onoff_specs, ratio_specs, ratio_sweep, saliency_onoff, saliency_source,
                                   source_specs, train_runs)

        s = ctx.obj
        _guard(lambda: train_runs(onoff_specs(s) + ratio_specs(s) + source_specs(s) + backbone_specs(s)
                                  + heads_specs(s) + cam_specs(s), s))
        for fn in (lambda: saliency_onoff(s), lambda: ratio_sweep(s), lambda: saliency_source(s),
                   lambda: backbones(s), lambda: heads(s), lambda: cam_experiment(s)):
            _done(fn)

    @app.command("explain")
    def explain_cmd(
        images: List[Path] = typer.Argument(..., help="Image file(s)."),
        out: Path = typer.Option(Path("explain"), "--out", help="Output folder for panels and JSON."),
        run: List[Path] = typer.Option([], "--run", help="Explain training run(s) instead of the shipped models."),
        tasks: str = typer.Option("age,gender,expression", "--tasks", help="Tasks (shipped models)."),
        detector: str = typer.Option("yunet", "--detector"),
        detector_model: Optional[Path] = typer.Option(None, "--detector-model", help="Detector model file, if not installed."),
        device: str = typer.Option("auto", "--device", help="'auto' (CUDA when present), 'cpu' or 'cuda'."),
    ) -> None:
        """Per face: crop | saliency | reweighted | class activation map of each task, + JSON with the
        CAM's share on eyes, nose and mouth (models with global average pooling only)."""
        from ..backends.torch import resolve_device
        from ..explain import explain_images, run_models, shipped_models
        from ..hub import MissingModelError

        try:
            device = resolve_device(device)
        except (ValueError, RuntimeError) as exc:
            typer.echo(f"error: --device: {exc}", err=True)
            raise typer.Exit(2) from None
        for p in images:
            if not p.exists():
                typer.echo(f"error: {p}: no such file", err=True)
                raise typer.Exit(2)
        try:
            models = run_models(run, device) if run else shipped_models(
                tuple(t for t in tasks.split(",") if t), device)
        except MissingModelError as exc:
            typer.echo(f"error: `salface explain` needs the shipped classifiers, and one is not installed: "
                       f"{exc}. Train and ship them (`salface train`, `salface ship`), pass --tasks for the tasks "
                       f"whose models are shipped, or pass --run RUN_DIR.",
                       err=True)
            raise typer.Exit(2) from None
        opts = {"model_path": str(detector_model)} if detector_model else None
        res = explain_images(images, out, models, detector=detector, detector_options=opts, device=device)
        for r in res:
            preds = ", ".join(f"{t} {v['label']} ({v['confidence']:.2f})" for t, v in r.predictions.items())
            typer.echo(f"{r.source} face {r.face}: {preds} → {out / r.panel}")
        if not res:
            typer.echo("no face found")
