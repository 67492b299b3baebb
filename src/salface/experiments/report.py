"""The reports: ``<out_dir>/<experiment>/README.md`` (tables, the papers' numbers beside ours
marked *different data*, command, commit, machine, date, wall time), ``result.json`` and PNG
figures, and the experiment's block in ``<out_dir>/README.md`` (:func:`write_experiment`,
:func:`update_index`); the number formats and figure helpers the experiments share.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..evaluation.reports import pyplot
from ..backends.torch import resolve_device
from ..utils import git_commit, machine
from .runs import RunResult, RunSpec
from .settings import Settings


def _pct(v: float | None, digits: int = 2) -> str:
    return "–" if v is None else f"{100 * v:.{digits}f} %"


def _pm(vals: Sequence[float]) -> str:
    from ..evaluation.metrics import mean_std

    m, sd = mean_std(vals)
    return f"{100 * m:.2f} ± {100 * sd:.2f} %" if len(vals) > 1 else f"{100 * m:.2f} %"


def _header(title: str, s: Settings, wall: float, extra: dict[str, Any]) -> list[str]:
    lines = [f"# {title}", "",
             f"- command: `{s.command or 'salface experiment …'}`",
             f"- commit: `{git_commit()}`",
             f"- machine: {machine()}; device: {resolve_device(s.device)}",
             f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
             f"- wall time of this call: {wall / 60:.1f} min (finished runs are reused, not retrained)"]
    lines += [f"- {k}: {v}" for k, v in extra.items()]
    return lines + [""]


def _runs_time(results: Sequence[RunResult]) -> str:
    """Training time of ``results`` and where they were trained (runs record their device,
    machine and commit; a report may be written later, elsewhere, from finished runs)."""
    tot = sum(r.info.get("train_seconds", 0.0) for r in results)
    where = sorted({f"{r.info.get('machine', 'machine not recorded')} ({r.info.get('device', '?')}, "
                    f"commit {r.info.get('commit', '?')})" for r in results})
    return (f"{tot / 60:.1f} min of training in {len(results)} runs (sum of their epoch times), "
            f"trained on: {'; '.join(where)}")


def _subset_text(spec: RunSpec, r: RunResult) -> str:
    return (f"{r.info['n_train']} train / {r.info['n_val']} val / {r.info['n_test']} test faces of "
            f"`{Path(spec.cache).name}` ({spec.epochs} epochs, {r.info['input_size']} px {r.info['color']}, "
            f"subsets drawn with seed 0)")


def write_experiment(name: str, s: Settings, title: str, body: list[str], payload: dict[str, Any],
                     wall: float, extra: dict[str, Any], summary: list[str] | None = None) -> Path:
    """``<out>/<name>/README.md`` + ``result.json``; refresh the block of ``<out>/README.md``."""
    out = Path(s.out_dir) / name
    out.mkdir(parents=True, exist_ok=True)
    md = _header(title, s, wall, extra) + body
    (out / "README.md").write_text("\n".join(md) + "\n")
    payload = {"experiment": name, "title": title, "command": s.command, "commit": git_commit(),
               "machine": machine(), "device": resolve_device(s.device),
               "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "wall_seconds": round(wall, 1),
               "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in extra.items()}, **payload}
    (out / "result.json").write_text(json.dumps(payload, indent=1, default=_json_default))
    update_index(Path(s.out_dir) / "README.md", name,
                 (summary if summary is not None else body[:12])
                 + ["", f"Command: `{s.command}` — commit `{payload['commit']}`, {payload['date']}, "
                        f"wall {wall / 60:.1f} min"
                        + (f"; runs: {extra['runs']}" if isinstance(extra.get("runs"), str) else "")
                        + f". Full report: [{name}/README.md]({name}/README.md)"])
    return out / "README.md"


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")


def update_index(readme: Path, name: str, lines: list[str]) -> None:
    """Replace the text between ``<!-- exp:NAME -->`` and ``<!-- /exp:NAME -->`` in ``readme``
    (nothing happens when the file or the markers are absent)."""
    if not readme.exists():
        return
    text = readme.read_text()
    pat = re.compile(rf"(<!-- exp:{re.escape(name)} -->\n).*?(<!-- /exp:{re.escape(name)} -->)", re.S)
    if not pat.search(text):
        return
    new = pat.sub(lambda m: m.group(1) + "\n".join(lines) + "\n" + m.group(2), text)
    readme.write_text(new)


def _savefig(fig, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    pyplot().close(fig)
    return path.name
