"""Sheets for a person to review the labels a model confidently contradicts, on one split.

    python scripts/label_review.py RUN --cache cache/crops/utkface-96-rgb --split val --task gender \
        --margin 1.5 --out cache/label-review/val

Runs the model (a training run or `salface ensemble` folder, as `salface cache audit` does) on the
split's clean crops (:func:`salface.training.derived.split_answers`), flags the faces whose
answer beats the label by more than ``--margin`` in log-probability (:func:`salface.training.label_audit.flag_disagreements`), and writes:

* ``review.csv``: one row per flagged face, most confident first (``n``, its ``index`` in the
  split's order, file name, label, answer, margin) with an empty ``verdict`` column for the reviewer (``label wrong``, ``unclear``,
  ``label right``);
* ``sheet_K.png``: the crops, 8 × 6 to a sheet, each tile numbered ``n`` with the label and the
  margin. These show dataset faces: keep them out of the repository.

``--summarise REVIEWED.csv`` instead reads a filled-in sheet and prints the verdicts' counts, and
the split's accuracy on the published labels and with the faces judged mislabelled set aside
(``--report REPORT.json``: a `salface evaluate` report on the same cache and split, whose
per-image answers are in the split's order).
"""

from __future__ import annotations

import argparse
import csv
from collections import Counter
from pathlib import Path

import numpy as np


def review(run: Path, cache: Path, split: str, task: str, margin: float, out: Path) -> None:
    import cv2

    from salface.labels import labels_for
    from salface.training.derived import split_answers
    from salface.training.label_audit import flag_disagreements

    cc, idx, logp, _ = split_answers(cache, run, task=task, split=split)
    labels = cc.task_labels(task)[idx]
    answer = logp.argmax(1)
    # log p(answer) − log p(label); faces without a label (−1) are never flagged, so their gap is unused
    gap = logp[np.arange(len(idx)), answer] - logp[np.arange(len(idx)), np.maximum(labels, 0)]
    flagged = np.flatnonzero(flag_disagreements(logp, labels, margin))
    flagged = flagged[np.argsort(-gap[flagged])]
    names, paths = labels_for(task), cc.paths
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "review.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["n", "index", "file", "label", "answer", "margin", "verdict"])
        for n, i in enumerate(flagged):
            w.writerow([n, int(i), Path(paths[idx[i]]).name, names[labels[i]], names[answer[i]],
                        f"{gap[i]:.2f}", ""])
    tiles = []
    for n, i in enumerate(flagged):
        im = cv2.cvtColor(np.asarray(cc.crops[idx[i]]), cv2.COLOR_RGB2BGR).copy()
        im = cv2.resize(im, (128, 128))
        cv2.putText(im, f"{n} {names[labels[i]][:1].upper()} {gap[i]:.1f}",
                    (2, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 255, 255), 1)
        tiles.append(im)
    for s in range(0, len(tiles), 48):
        sheet = tiles[s:s + 48]
        sheet += [np.zeros_like(tiles[0])] * (-len(sheet) % 8)
        rows = [np.hstack(sheet[r:r + 8]) for r in range(0, len(sheet), 8)]
        cv2.imwrite(str(out / f"sheet_{s // 48}.png"), np.vstack(rows))
    print(f"{len(flagged)} of {len(idx)} {split} faces flagged; {out / 'review.csv'}")


def summarise(reviewed: Path, report: Path | None, task: str) -> None:
    rows = list(csv.DictReader(open(reviewed)))
    counts = Counter(r["verdict"] or "(none)" for r in rows)
    print(f"{len(rows)} flagged faces: " + ", ".join(f"{k} {v}" for k, v in counts.most_common()))
    by = Counter((r["label"], r["verdict"]) for r in rows)
    for (label, verdict), v in sorted(by.items()):
        print(f"  labelled {label}: {verdict or '(none)'} {v}")
    if report is not None:
        from salface.evaluation.reports import read_per_image

        ok = np.asarray(read_per_image(report)[task], bool)
        keep = np.ones(len(ok), bool)
        keep[[int(r["index"]) for r in rows if r["verdict"] == "label wrong"]] = False
        print(f"accuracy on the published labels {100 * ok.mean():.2f} % ({len(ok)} faces); without the "
              f"{(~keep).sum()} judged mislabelled {100 * ok[keep].mean():.2f} %")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, nargs="?")
    ap.add_argument("--cache", type=Path)
    ap.add_argument("--split", default="val", choices=["train", "val", "test"])
    ap.add_argument("--task", default="gender")
    ap.add_argument("--margin", type=float, default=1.5)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--summarise", type=Path, help="a reviewed review.csv")
    ap.add_argument("--report", type=Path, help="with --summarise: a `salface evaluate` JSON of the split")
    a = ap.parse_args()
    if a.summarise:
        summarise(a.summarise, a.report, a.task)
    else:
        if a.run is None or a.cache is None or a.out is None:
            ap.error("RUN, --cache and --out are needed to make review sheets")
        review(a.run, a.cache, a.split, a.task, a.margin, a.out)


if __name__ == "__main__":
    main()
