"""NUS fixations: column order, fixation maps with a known σ, the stored split."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import shared_path
from salface.saliency.fixations import (DEGREES_PER_LONG_SIDE, NusDataError, fixation_density,
                                        fixation_points_map, load_nus, load_split, make_split,
                                        one_degree_px, scale_points)


@pytest.fixture(scope="module")
def nus():
    return load_nus(shared_path("data", "nus-saliency"))


def test_load_nus_reads_row_col_order(nus):
    assert len(nus) == 500
    assert sum(len(im.points) for im in nus) == 43894  # every fixation of the release kept
    im = nus[2]  # 003.jpg is 1600 wide, 1200 high
    assert (im.width, im.height) == (1600, 1200)
    x, y = im.points[:, 0], im.points[:, 1]
    assert (x < 1600).all() and (y < 1200).all()
    # x beyond the height proves the columns are not [x, y] as the README says
    assert x.max() > 1200  # read as [x, y], the same points would fall below the image
    # every non-square image: points inside the image
    for im in nus:
        assert (im.points[:, 0] < im.width).all() and (im.points[:, 1] < im.height).all()
    assert set(np.unique(nus[0].observer)) <= set(range(12))


def test_image_matches_info(nus):
    rgb = nus[16].load_image()
    assert rgb.shape == (240, 320, 3) and rgb.dtype == np.uint8


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(NusDataError, match="fixations.mat"):
        load_nus(tmp_path)


def test_one_degree_and_density():
    assert one_degree_px(256, 256) == pytest.approx(256 / DEGREES_PER_LONG_SIDE)
    hw = (101, 101)
    d = fixation_density(np.array([[50.0, 50.0]]), hw, sigma=5.0)
    assert d.max() == pytest.approx(1.0) and d[50, 50] == pytest.approx(1.0)
    # a Gaussian of σ = 5 px: at 5 px from the centre the value is exp(−½) = 0.6065
    assert d[50, 55] == pytest.approx(np.exp(-0.5), abs=0.01)
    assert d[55, 50] == pytest.approx(np.exp(-0.5), abs=0.01)
    assert d[50, 65] == pytest.approx(np.exp(-4.5), abs=0.01)
    two = fixation_density(np.array([[10.0, 10.0], [10.0, 10.0], [90.0, 90.0]]), hw, sigma=3.0)
    assert two[90, 90] == pytest.approx(0.5, abs=0.01)  # one fixation vs two at the same spot


def test_points_map_and_scaling():
    m = fixation_points_map(np.array([[0.2, 1.6], [3.0, 0.0]]), (3, 4))
    assert m.tolist() == [[0, 0, 0, 1], [0, 0, 0, 0], [1, 0, 0, 0]]
    p = scale_points(np.array([[0.0, 0.0], [99.0, 49.0]]), (50, 100), (25, 50))
    np.testing.assert_allclose(p, [[-0.25, -0.25], [49.25, 24.25]])


def test_split_is_fixed_and_disjoint():
    s = load_split()
    assert {k: len(v) for k, v in s.items()} == {"train": 350, "val": 50, "test": 100}
    everything = s["train"] + s["val"] + s["test"]
    assert sorted(everything) == list(range(500))
    assert make_split() == s  # the stored file is what the seed gives


def test_split_overlap_detected(tmp_path):
    bad = tmp_path / "split.json"
    bad.write_text(json.dumps({"train": [1, 2], "val": [2], "test": [3]}))
    with pytest.raises(NusDataError, match="overlap"):
        load_split(bad)
