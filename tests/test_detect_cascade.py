"""The second look (``yunet+blazeface``): only where the primary finds nothing, and only faces a
second detector confirms."""

import numpy as np
import pytest

from salface.detect.base import Detector
from salface.detect.cascade import SecondLook
from salface.types import Box, Face


class _Fixed(Detector):
    def __init__(self, name, boxes):
        self.name = name
        self.boxes = boxes
        self.calls = 0

    def detect(self, image):
        self.calls += 1
        return [Face(Box(*b), score=0.5) for b in self.boxes]


IMG = np.zeros((100, 100, 3), np.uint8)


def test_primary_faces_are_kept_and_nothing_else_runs():
    p, s, w = _Fixed("p", [(10, 10, 50, 50)]), _Fixed("s", [(60, 60, 90, 90)]), _Fixed("w", [(60, 60, 90, 90)])
    det = SecondLook(p, s, w)
    assert [f.box.as_tuple() for f in det.detect(IMG)] == [(10, 10, 50, 50)]
    assert (s.calls, w.calls) == (0, 0)  # photos with a face cost what they did


def test_second_look_keeps_only_confirmed_faces():
    p = _Fixed("p", [])
    s = _Fixed("s", [(10, 10, 50, 50), (60, 60, 90, 90)])
    w = _Fixed("w", [(12, 12, 52, 52), (0, 60, 20, 80)])  # confirms the first only
    det = SecondLook(p, s, w, name="p+w")
    assert det.name == "p+w"
    assert [f.box.as_tuple() for f in det.detect(IMG)] == [(10, 10, 50, 50)]  # the second look's box


def test_agreement_threshold_is_iou():
    p, s = _Fixed("p", []), _Fixed("s", [(0, 0, 40, 40)])
    w = _Fixed("w", [(20, 0, 60, 40)])  # IoU = 800 / 2400 = 1/3
    assert len(SecondLook(p, s, w, agree_iou=0.33).detect(IMG)) == 1
    assert SecondLook(p, s, w, agree_iou=0.34).detect(IMG) == []
    with pytest.raises(ValueError):
        SecondLook(p, s, w, agree_iou=0.0)


def test_no_candidates_skip_the_witness():
    p, s, w = _Fixed("p", []), _Fixed("s", []), _Fixed("w", [(0, 0, 10, 10)])
    assert SecondLook(p, s, w).detect(IMG) == []
    assert w.calls == 0


def test_factories_are_built_once_and_only_when_needed():
    built = []

    def factory(name, boxes):
        def make():
            built.append(name)
            return _Fixed(name, boxes)
        return make

    det = SecondLook(_Fixed("p", [(0, 0, 9, 9)]), factory("s", [(0, 0, 40, 40)]), factory("w", [(0, 0, 40, 40)]))
    det.detect(IMG)
    assert built == []  # the primary found a face: nothing else was loaded
    det.primary.boxes = []
    assert len(det.detect(IMG)) == 1 and len(det.detect(IMG)) == 1
    assert built == ["s", "w"]


def test_yunet_options_reach_both_looks(yunet_model):
    from salface.detect import get_detector

    det = get_detector("yunet+blazeface", model_path=yunet_model, max_side=1280, min_face=20,
                       score_threshold=0.7)
    assert det.name == "yunet+blazeface"
    assert (det.primary.max_side, det.primary.min_face, det.primary.score_threshold) == (1280, 20, 0.7)
    assert (det.second.max_side, det.second.min_face, det.second.score_threshold) == (1280, 20, 0.2)
    assert det.witness.name == "blazeface" and det.model_path == det.primary.model_path
