"""The papers' experiments as commands: ``salface experiment <name>``.

Every experiment is a list of training runs plus an analysis. One file per experiment, and the
parts they share:

=========================  ==========================================================================
module                     what it holds
=========================  ==========================================================================
``settings``               :class:`Settings` (folders, sizes, seeds, device), :data:`EXPERIMENTS`,
                           the papers' numbers (:data:`PAPER`)
``views``                  cache views and seeded subsets (:func:`cache_view`, :func:`subset_index`),
                           saliency maps built once (:func:`ensure_saliency`)
``runs``                   :class:`RunSpec`, :class:`RunResult`, :func:`run_one` (train, resume or
                           reuse one run, then test it), :func:`train_runs` (many, in processes)
``compare``                paired tests between groups of runs and the verdicts
``report``                 ``README.md`` + ``result.json`` + figures per experiment, the index block
``plan``                   :func:`plan`: the runs experiments 1-5 need, done or not, time left
``onoff``                  1. with and without saliency (:func:`saliency_onoff`)
``ratios``                 2. the reweighted ratio sweep (:func:`ratio_sweep`)
``sources``                3. the saliency source (:func:`saliency_source`)
``networks``               4. backbones (:func:`backbones`)
``cam``                    5. class activation maps (:func:`cam_experiment`)
``per_group``              6. accuracy per group (:func:`fairness`)
``two_heads``              one network with two heads against one per task (:func:`heads`)
``protocols``              what the dataset protocols share
``adience_protocol``       7a. Adience five-fold (:func:`adience`)
``affectnet_protocol``     7b. AffectNet balanced test (:func:`affectnet`)
=========================  ==========================================================================

Results go to ``<out_dir>/<experiment>/``: ``result.json``, ``README.md`` (tables, the papers'
numbers beside ours marked *different data*, command, commit, machine, date, wall time) and PNG
figures, and the experiment's block in ``<out_dir>/README.md`` is refreshed.

Every name below is importable from ``salface.experiments`` as it was when this was one module.
"""

from __future__ import annotations

from ..backends.torch import resolve_device
from ..utils import command_line, file_lock
from .adience_protocol import adience
from .affectnet_protocol import affectnet
from .cam import cam_experiment, cam_specs
from .compare import SIGNIFICANCE_NOTE
from .networks import BACKBONE_SET, backbone_specs, backbones
from .onoff import onoff_specs, saliency_onoff
from .per_group import fairness
from .plan import plan
from .ratios import RATIOS, ratio_specs, ratio_sweep
from .report import update_index, write_experiment
from .runs import RunResult, RunSpec, run_one, train_runs
from .settings import DATASET_DEFAULTS, DIFFERENT_DATA, EXPERIMENTS, PAPER, Settings
from .sources import SOURCES, saliency_source, source_specs
from .two_heads import heads, heads_specs
from .views import CacheView, cache_view, ensure_saliency, subset_index

__all__ = ["Settings", "RunSpec", "RunResult", "run_one", "cache_view", "subset_index", "saliency_onoff",
           "ratio_sweep", "saliency_source", "backbones", "cam_experiment", "fairness", "adience", "affectnet",
           "heads", "train_runs", "file_lock", "onoff_specs", "ratio_specs", "source_specs", "backbone_specs",
           "heads_specs", "cam_specs", "EXPERIMENTS", "PAPER", "update_index",
           "plan", "write_experiment", "ensure_saliency", "CacheView", "DATASET_DEFAULTS", "DIFFERENT_DATA",
           "RATIOS", "SOURCES", "BACKBONE_SET", "SIGNIFICANCE_NOTE", "command_line", "resolve_device"]
