"""A tiny training run for tests/test_distributed.py: ``python -m torch.distributed.run
--nproc_per_node 2 tests/ddp_train_run.py CACHE OUT`` (or plain ``python``, one process)."""

from __future__ import annotations

import sys

from salface.training.presets import get_preset


def tiny_preset():
    """A BatchNorm-free, dropout-free recipe (GilNet at 64 px, AdamW, cosine, flips + rotations
    + shifts + zoom), so that DDP's update equals the one-process update."""
    return get_preset("default-expression").with_overrides(
        name="ddp-tiny", backbone="gilnet", input_size=64, dropout=0.0, pretrained=False, freeze=0,
        soft_targets=False, class_weighted=False, label_smoothing=0.0, saliency="none",
        batch_size=8, epochs=2, warmup_epochs=0.5, lr=3e-4)


def recording_shards(monkeypatch_setattr=setattr) -> list[list[int]]:
    """Record the sample indices of every batch share this process trains on."""
    from salface.training.distributed import DistContext

    seen: list[list[int]] = []
    original = DistContext.shard

    def shard(self, *arrays):
        out = original(self, *arrays)
        seen.append([int(i) for i in out[0]])
        return out

    monkeypatch_setattr(DistContext, "shard", shard)
    return seen


if __name__ == "__main__":
    import json
    import os
    from pathlib import Path

    from salface.training.train import train

    cache, out = sys.argv[1], sys.argv[2]
    seen = recording_shards()
    train(tiny_preset(), cache, out_dir=out, seed=3, threads=1, progress=False)
    Path(out, f"shares_rank{os.environ.get('RANK', '0')}.json").write_text(json.dumps(seen))
