"""DDP training (salface.training.distributed): two Gloo processes under torchrun train the weights of one
process with the same seed and global batch; the hooks' arithmetic on its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from salface.training.distributed import DistContext, setup_distributed

HERE = Path(__file__).resolve().parent


def test_outside_torchrun_every_hook_is_a_no_op(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    ctx = setup_distributed("cpu")
    assert (ctx.rank, ctx.world, ctx.is_main, ctx.enabled) == (0, 1, True, False)
    order = np.arange(11)
    assert ctx.trim(order, 7) is order
    idx = np.arange(5)
    assert ctx.shard(idx, None)[0] is not None and len(ctx.shard(idx)[0]) == 5
    assert ctx.sum(1.5, 2, {"a": 3}) == (1.5, 2, {"a": 3})
    assert ctx.on_main(lambda a, b=0: a + b, 2, b=3) == 5
    model = object()
    assert ctx.wrap(model) is model


def test_shares_trim_and_batch_check():
    ranks = [DistContext(rank=r, world=3) for r in range(3)]
    idx = np.arange(12)
    crops = np.arange(12 * 2).reshape(12, 2)
    parts = [c.shard(idx, crops, None) for c in ranks]
    assert [p[0].tolist() for p in parts] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    assert all(np.array_equal(p[1], crops[p[0]]) and p[2] is None for p in parts)
    assert [len(c.shard(np.arange(7))[0]) for c in ranks] == [2, 3, 2]  # covers all 7
    assert len(ranks[1].trim(np.arange(20), 6)) == 18
    with pytest.raises(ValueError, match="multiple of the 3 processes"):
        ranks[0].trim(np.arange(20), 8)
    assert not ranks[1].is_main and ranks[1].log(print)("ignored") is None


def _tiny_cache(root: Path, n_train: int = 32, n_val: int = 8):
    """Synthetic 48 px gray faces-to-be: a bright blob whose place depends on the label."""
    from PIL import Image

    from salface.training.cache import build_crop_cache
    from salface.data.base import Sample

    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    samples = []
    for i in range(n_train + n_val):
        y = i % 7
        img = rng.integers(0, 60, (48, 48), dtype=np.uint8)
        r, c = 6 + 5 * y, 6 + 3 * (i % 5)
        img[r:r + 8, c:c + 12] = 220
        p = root / f"img{i:03d}.png"
        Image.fromarray(img).save(p)
        samples.append(Sample(str(p), {"expression": y}))
    return build_crop_cache(samples, root / "cache", size=64, color="gray", detector="none",
                            splits=["train"] * n_train + ["val"] * n_val, progress=False)


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(tmp_path, monkeypatch):
    pytest.importorskip("torch.distributed")
    from safetensors.numpy import load_file

    sys.path.insert(0, str(HERE))
    from ddp_train_run import recording_shards, tiny_preset

    from salface.training.train import train

    cache = _tiny_cache(tmp_path / "data")
    batches = recording_shards(monkeypatch.setattr)
    one = train(tiny_preset(), cache, out_dir=tmp_path / "one", seed=3, threads=1, progress=False,
                log=lambda s: None)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc_per_node", "2", str(HERE / "ddp_train_run.py"),
                           str(cache.root), str(tmp_path / "two")],
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    two = tmp_path / "two"
    # rank 0 alone wrote the folder, completely; rank 1 logged nothing
    assert {"config.json", "state.json", "metrics.json", "last.safetensors", "best.safetensors",
            "optimizer.pt"} <= {p.name for p in two.iterdir()}
    assert not list(two.glob("*.tmp"))
    assert proc.stdout.count("two epoch 2/2") == 1
    # each rank trained on its half of every global batch of the one-process run
    shares = [json.loads((two / f"shares_rank{r}.json").read_text()) for r in (0, 1)]
    assert len(batches) == len(shares[0]) == len(shares[1]) == 8          # 2 epochs x 4 steps
    assert all(len(a) == len(b) == 4 and a + b == g for a, b, g in zip(*shares, batches))
    # the same run: per-epoch train loss and accuracy (summed over both ranks), val, weights
    hist1 = one.history
    hist2 = json.loads((two / "metrics.json").read_text())
    assert [h["epoch"] for h in hist2] == [1, 2]
    for a, b in zip(hist1, hist2):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5, abs=1e-6)
        assert b["train_expression_accuracy"] == a["train_expression_accuracy"]
        assert b["val_score"] == a["val_score"]
    w1, w2 = load_file(str(tmp_path / "one" / "last.safetensors")), load_file(str(two / "last.safetensors"))
    assert w1.keys() == w2.keys()
    worst = max(float(np.abs(w1[k] - w2[k]).max()) for k in w1)
    moved = max(float(np.abs(w1[k]).max()) for k in w1)
    print(f"largest weight difference {worst:.3g} (largest weight {moved:.3g})")
    assert worst < 1e-5 * max(1.0, moved), worst
    # and training moved the weights at all (the comparison is not of two initialisations)
    from salface.models.backbones import build_classifier
    import torch

    torch.manual_seed(3)
    init = build_classifier(one.config, pretrained=False).state_dict()
    assert max(float((init[k].numpy() - w1[k]).__abs__().max()) for k in w1) > 1e-3
