"""Face-region shares: region geometry by hand, uniform = area fraction, real detections."""

from __future__ import annotations

import numpy as np
import pytest

from salface.saliency import get_saliency
from salface.saliency.faces import FaceSample, face_shares, figure2, mass_shares, region_masks

# a frontal face in a 112-px crop: eyes 40 px apart (d = 40)
LM = np.array([[36.0, 45.0], [76.0, 45.0], [56.0, 65.0], [40.0, 85.0], [72.0, 85.0]])


def test_region_geometry():
    m = region_masks(LM, (112, 112))
    # eye discs of radius 0.25·40 = 10 px: about π·10² = 314 px each, disjoint
    assert m["eyes"].sum() == pytest.approx(2 * np.pi * 100, rel=0.03)
    assert m["eyes"][45, 36] and m["eyes"][45, 46] and not m["eyes"][45, 47]
    # mouth disc r = 0.35·40 = 14 px at the corners' midpoint (56, 85)
    assert m["mouth"][85, 56] and m["mouth"][85, 70] and not m["mouth"][85, 71]
    assert m["nose"].sum() == pytest.approx(np.pi * 100, rel=0.03)
    assert (m["features"] == (m["eyes"] | m["nose"] | m["mouth"])).all()
    with pytest.raises(ValueError, match="inter-ocular"):
        region_masks(np.zeros((5, 2)), (112, 112))


def test_mass_shares_by_hand():
    masks = region_masks(LM, (112, 112))
    on_eyes = masks["eyes"].astype(np.float32)
    s = mass_shares(on_eyes, masks)
    assert s["eyes"] == pytest.approx(1.0) and s["nose"] == 0.0 and s["mouth"] == 0.0
    # uniform map: the share is the area fraction
    u = mass_shares(np.ones((112, 112)), masks)
    assert u["eyes"] == pytest.approx(masks["eyes"].sum() / 112 ** 2)
    # half the mass on the eyes: eyes carry value 1, the rest value r with equal total
    half = np.where(masks["eyes"], 1.0, masks["eyes"].sum() / (~masks["eyes"]).sum())
    assert mass_shares(half, masks)["eyes"] == pytest.approx(0.5)


def test_face_shares_uniform_and_lift(astronaut):
    import cv2

    crop = cv2.resize(astronaut[0:240, 120:360], (112, 112))
    samples = [FaceSample("a", crop, LM), FaceSample("b", crop[:, ::-1].copy(), LM)]
    res = face_shares(samples, {"none": get_saliency("none"), "centre": get_saliency("centre")})
    assert res["n_faces"] == 2
    # the all-ones map is the uniform map: lift exactly 1
    assert res["lift"]["none"]["features"] == pytest.approx(1.0)
    # the regions sit near the crop centre, so the centre bias puts more than chance there
    assert res["lift"]["centre"]["features"] > 1.5


def test_real_detection_and_figure(astronaut, yunet_model, tmp_path):
    from salface.crop import crop_face
    from salface.detect import get_detector

    face = get_detector("yunet", model_path=yunet_model).detect(astronaut)[0]
    c = crop_face(astronaut, face, size=112)
    lm = c.landmarks
    assert lm[0, 0] < lm[1, 0]  # right eye (subject's) left of the left eye in the crop
    res = face_shares([FaceSample("astronaut", c.pixels, lm)], {"ft": get_saliency("frequency-tuned")})
    share = res["share"]["ft"]["features"]["mean"]
    assert 0.0 < share < 1.0
    png = figure2([FaceSample("astronaut", c.pixels, lm)], get_saliency("frequency-tuned"),
                  tmp_path / "fig.png")
    import matplotlib.image as mpimg

    assert mpimg.imread(png).shape[1] == 600  # 6 inches at 100 dpi
