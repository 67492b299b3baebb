"""The Analyzer and `salface analyze`: order, batching, bad files, no-face images, outputs."""

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from salface.detect.given import GivenBoxes
from salface.io import ImageError
from salface.pipeline import Analyzer
from salface.saliency.base import SaliencyModel


class CountingSaliency(SaliencyModel):
    """A real (trivial) saliency model: a centred disc. Records the batch sizes it sees."""

    name = "disc"

    def __init__(self):
        self.batches = []

    def predict(self, crops):
        self.batches.append(len(crops))
        n, h, w, _ = crops.shape
        yy, xx = np.mgrid[:h, :w]
        disc = (((yy - h / 2) ** 2 + (xx - w / 2) ** 2) < (h / 3) ** 2).astype(np.float32)
        return np.repeat(disc[None], n, axis=0)


@pytest.fixture
def files(tmp_path, astronaut):
    Image.fromarray(astronaut).save(tmp_path / "a_astronaut.png")
    (tmp_path / "b_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    Image.fromarray(np.full((120, 160, 3), 128, np.uint8)).save(tmp_path / "c_flat.png")
    Image.fromarray(astronaut[:, ::-1]).save(tmp_path / "d_mirror.jpg")
    return sorted(tmp_path.iterdir())


def test_detect_only_astronaut(yunet_model, astronaut):
    from salface.detect import get_detector

    an = Analyzer(detector=get_detector("yunet", model_path=yunet_model), model=None,
                  saliency="spectral-residual", return_saliency=True)
    faces = an.analyze(astronaut)
    assert len(faces) == 1
    f = faces[0]
    x1, y1, x2, y2 = f.face.box.as_tuple()
    assert 150 < x1 < 200 and 50 < y1 < 110 and 240 < x2 < 300 and 150 < y2 < 230  # her face
    assert f.crop.shape == (224, 224, 3)
    assert f.saliency.shape == (224, 224) and 0 <= f.saliency.min() and f.saliency.max() <= 1
    # the crop box is the detector box made square and 30 % larger
    side = max(x2 - x1, y2 - y1) * 1.3
    assert f.crop_box.width == pytest.approx(side, abs=1)


def test_batch_keeps_order_errors_and_no_face(files, yunet_model):
    from salface.detect import get_detector

    sal = CountingSaliency()
    an = Analyzer(detector=get_detector("yunet", model_path=yunet_model), model=None,
                  saliency=sal, return_saliency=True, batch_size=64)
    results = list(an.analyze_batch(files))
    assert [r.source for r in results] == [str(f) for f in files]
    by = {r.source.rsplit("/", 1)[1]: r for r in results}
    assert not by["a_astronaut.png"].error and len(by["a_astronaut.png"].faces) == 1
    assert by["b_corrupt.jpg"].faces == [] and by["b_corrupt.jpg"].error
    assert by["c_flat.png"].error is None and by["c_flat.png"].faces == []    # no face: normal
    assert len(by["d_mirror.jpg"].faces) == 1
    assert sal.batches == [2]   # both faces went through the saliency model in one batch


def test_batches_are_split(astronaut):
    sal = CountingSaliency()
    boxes = [(150, 60, 260, 190), (0, 0, 50, 50), (300, 300, 400, 400)]
    an = Analyzer(detector=GivenBoxes(boxes), model=None, saliency=sal, return_saliency=True,
                  batch_size=2)
    results = list(an.analyze_batch([astronaut, astronaut]))
    assert [len(r.faces) for r in results] == [3, 3]
    assert sal.batches == [2, 2, 2]
    assert results[0].source == "<image 0>"


def test_analyze_raises_for_a_bad_file(tmp_path):
    bad = tmp_path / "empty.png"
    bad.write_bytes(b"")
    an = Analyzer(detector="whole", model=None)
    with pytest.raises(ImageError) as exc:
        an.analyze(bad)
    assert "empty.png" in str(exc.value)


def test_cli_detect_only(files, tmp_path, yunet_model):
    from salface.cli import app
    from salface.hub import ensure_file

    ensure_file("yunet", source=str(yunet_model), progress=False)
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["analyze", *map(str, files), "--detect-only", "--saliency",
                                   "frequency-tuned", "--save-saliency", str(out / "sal"),
                                   "--annotate", str(out / "ann"), "-o", str(out / "r.json")])
    assert res.exit_code == 1, res.output          # one file failed
    data = json.loads((out / "r.json").read_text())
    assert len(data) == 4 and "error" in data[1] and data[1]["faces"] == []
    assert len(data[0]["faces"]) == 1 and set(data[0]["faces"][0]["landmarks"]) >= {"nose"}
    trip = np.asarray(Image.open(out / "sal" / "a_astronaut_face0.png"))
    assert trip.shape == (224, 3 * 224 + 8, 3)
    assert (out / "ann" / "a_astronaut.jpg").exists() and not (out / "ann" / "b_corrupt.jpg").exists()


def test_cli_csv_and_jsonl(files, tmp_path, yunet_model):
    from salface.cli import app
    from salface.hub import ensure_file

    ensure_file("yunet", source=str(yunet_model), progress=False)
    res = CliRunner().invoke(app, ["analyze", str(files[0]), str(files[2]), "--detect-only",
                                   "--format", "csv"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.strip().splitlines()
    assert lines[0].startswith("source,face,x1") and len(lines) == 3   # header + 1 face + 1 empty
    res = CliRunner().invoke(app, ["analyze", str(files[0]), "--detect-only", "-f", "jsonl"])
    assert json.loads(res.stdout.strip())["faces"][0]["score"] > 0.5


def test_cli_no_match_is_usage_error(tmp_path):
    from salface.cli import app

    res = CliRunner().invoke(app, ["analyze", str(tmp_path / "nothing*.jpg"), "--detect-only"])
    assert res.exit_code == 2


def test_shipped_expression_model_golden(yunet_model, astronaut):
    """Golden output: the smiling astronaut is 'happy' under the shipped expression model."""
    from salface.detect import get_detector
    from salface.models.registry import DEFAULT_MODELS, list_classifiers

    if DEFAULT_MODELS["expression"] not in list_classifiers():
        pytest.skip("expression model not shipped")
    an = Analyzer(detector=get_detector("yunet", model_path=yunet_model), tasks=("expression",))
    (face,) = an.analyze(astronaut)
    assert face.expression.label == "happy" and face.expression.confidence > 0.6
    assert sum(face.expression.probabilities.values()) == pytest.approx(1.0, abs=1e-4)
    assert face.age is None and face.gender is None


def test_missing_default_model_is_named(monkeypatch, tmp_path):
    """A task whose default model is not shipped: a clear error naming the model, no guessing."""
    from salface.hub import DEFAULT_MODELS, MissingModelError

    monkeypatch.setenv("SALFACE_BUNDLED_DIR", str(tmp_path))  # an empty bundle
    with pytest.raises(MissingModelError, match=DEFAULT_MODELS["age"]):
        Analyzer(detector="whole", tasks=("age",))


def _hand_built(an, cfg, network):
    """Put a hand-built NumPy 'network' into Analyzer ``an`` as its only classifier."""
    from salface.classify import Classifier
    from salface.pipeline import _crop_key, _Group

    an.groups = [_Group(classifier=Classifier(cfg.name, cfg, network), tasks=cfg.tasks,
                        saliency=None, saliency_spec="none", crop_key=_crop_key(cfg))]
    return an


def test_flip_tta_follows_the_model_config(astronaut):
    """A hand-built 'classifier' whose first logit is (left half − right half) of the input: a mirror
    negates it, so flip TTA averages it to exactly 0 (uniform probabilities); without TTA it is not."""
    from salface.labels import EXPRESSIONS
    from salface.models.config import ClassifierConfig

    def left_minus_right(x):
        w = x.shape[3] // 2
        d = x[..., :w].mean(axis=(1, 2, 3)) - x[..., w:].mean(axis=(1, 2, 3))
        z = np.zeros((len(x), 7), np.float32)
        z[:, 0] = d * 50
        return {"expression": z}

    def probs(tta):
        cfg = ClassifierConfig(name="lmr", backbone="mobilenet_v2", tasks=("expression",), input_size=64,
                               saliency="none", extra={"tta_flip": tta})
        an = _hand_built(Analyzer(detector=GivenBoxes([(150, 60, 260, 190)]), model=None), cfg,
                         left_minus_right)
        p = next(an.analyze_batch([astronaut])).faces[0].expression.probabilities
        return np.array([p[e] for e in EXPRESSIONS])

    assert np.allclose(probs(True), 1 / 7, atol=1e-6)
    assert abs(probs(False)[0] - 1 / 7) > 0.01


def test_temperature_in_the_model_config_scales_the_logits(astronaut):
    """Logits (2, 0, …, 0): softmax gives e²/(e² + 6) to the first class; at temperature 2 the
    logits are (1, 0, …) and it gets e/(e + 6). The label does not change."""
    from salface.labels import EXPRESSIONS
    from salface.models.config import ClassifierConfig

    def fixed(x):
        z = np.zeros((len(x), 7), np.float32)
        z[:, 0] = 2.0
        return {"expression": z}

    def first(extra):
        cfg = ClassifierConfig(name="fixed", backbone="mobilenet_v2", tasks=("expression",), input_size=64,
                               saliency="none", extra=extra)
        an = _hand_built(Analyzer(detector=GivenBoxes([(150, 60, 260, 190)]), model=None), cfg, fixed)
        e = next(an.analyze_batch([astronaut])).faces[0].expression
        return e.label, e.probabilities[EXPRESSIONS[0]]

    assert first({}) == (EXPRESSIONS[0], pytest.approx(np.e ** 2 / (np.e ** 2 + 6)))
    assert first({"temperature": {"expression": 2.0}}) == (EXPRESSIONS[0], pytest.approx(np.e / (np.e + 6)))
    assert first({"temperature": {"age": 2.0}})[1] == pytest.approx(np.e ** 2 / (np.e ** 2 + 6))


def test_keep_images_attaches_the_decoded_pixels(files):
    an = Analyzer(detector=GivenBoxes([(150, 60, 260, 190)]), model=None, keep_images=True)
    by = {r.source.split("/")[-1]: r for r in an.analyze_batch(files)}
    assert np.array_equal(by["a_astronaut.png"].image, np.asarray(Image.open(files[0]).convert("RGB")))
    assert by["b_corrupt.jpg"].image is None and by["b_corrupt.jpg"].error
    assert "image" not in by["a_astronaut.png"].to_dict()
    plain = Analyzer(detector=GivenBoxes([(150, 60, 260, 190)]), model=None)
    assert next(plain.analyze_batch(files[:1])).image is None


def test_analyze_faces_classifies_given_faces(astronaut):
    """analyze_faces (no detection) gives the faces analyze_batch gives for the same boxes."""
    from salface.types import Box, Face

    faces = [Face(Box(178, 63, 268, 176)), Face(Box(0, 0, 120, 120))]
    an = Analyzer(detector=GivenBoxes([f.box.as_tuple() for f in faces]))
    direct = an.analyze_faces(astronaut, faces)
    via = next(an.analyze_batch([astronaut])).faces
    assert len(direct) == 2
    for a, b in zip(direct, via):
        assert a.face.box == b.face.box
        for task, p in a.predictions().items():
            assert p.label == b.predictions()[task].label
            assert p.confidence == pytest.approx(b.predictions()[task].confidence, abs=1e-6)
    assert an.analyze_faces(astronaut, []) == []
    with pytest.raises(ImageError):
        an.analyze_faces(b"not an image", faces)


def test_fast_profile_models_int8_saliency_and_no_tta():
    """`fast=True`: age and gender from one network, INT8 ML-Net, no flip TTA; the default models
    are untouched by it; other models refuse it."""
    from salface import hub

    if any(n not in hub.load_manifest()["models"] for n in set(hub.FAST_MODELS.values())):
        pytest.skip("the fast profile's models are not bundled")
    fast = Analyzer(detector="whole", fast=True)
    assert {g.classifier.name: g.tasks for g in fast.groups} == {
        "default-age-gender": ("age", "gender"), "default-expression": ("expression",)}
    assert all(g.classifier.tta is False for g in fast.groups)
    assert fast.groups[0].saliency.network.path.name.endswith(".int8.onnx")
    full = Analyzer(detector="whole")
    assert {g.classifier.name for g in full.groups} == {hub.DEFAULT_MODELS[t] for t in ("age", "gender", "expression")}
    assert all(g.classifier.tta is None for g in full.groups)
    with pytest.raises(ValueError, match="fast"):
        Analyzer(detector="whole", model="default-expression", fast=True)

    # no TTA means one pass: the logits of the crop alone, not the mean with its mirror
    expr = next(g.classifier for g in full.groups if "expression" in g.tasks)
    assert expr.config.extra.get("tta_flip")
    rng = np.random.default_rng(0)
    px = rng.integers(0, 256, (3, 96, 96, 3), dtype=np.uint8)
    maps = rng.random((3, 96, 96)).astype(np.float32)
    one = expr.with_tta(False).logits(expr.prepare(px), maps, calibrated=False)["expression"]
    mirrored = expr.with_tta(False).logits(expr.prepare(px[:, :, ::-1].copy()), maps[:, :, ::-1].copy(),
                                           calibrated=False)["expression"]
    both = expr.logits(expr.prepare(px), maps, calibrated=False)["expression"]
    np.testing.assert_allclose(both, (one + mirrored) / 2, rtol=1e-4, atol=1e-4)
    assert not np.allclose(one, both, atol=1e-3)


def test_cli_fast_profile(files):
    from salface import hub
    from salface.cli import app

    if any(n not in hub.load_manifest()["models"] for n in set(hub.FAST_MODELS.values())):
        pytest.skip("the fast profile's models are not bundled")
    res = CliRunner().invoke(app, ["analyze", str(files[0]), "--detector", "whole", "--fast", "-f", "jsonl"])
    assert res.exit_code == 0, res.output
    face = json.loads(res.output.splitlines()[0])["faces"][0]
    assert {"age", "gender", "expression"} <= set(face)
    res = CliRunner().invoke(app, ["analyze", str(files[0]), "--fast", "--model", "default-expression"])
    assert res.exit_code == 2 and "fast" in res.output


def test_resolution_cap_changes_the_model_input_not_the_saliency_map(astronaut):
    """With ``max_crop_px``, the network gets the crop seen at that many photo pixels, while the
    saliency map is of the uncapped crop the pipeline shares with the other models."""
    from salface.classify import Classifier
    from salface.crop import crop_face
    from salface.models.config import ClassifierConfig
    from salface.pipeline import _crop_key, _Group
    from salface.preprocess import to_input_array
    from salface.types import Box, Face

    seen = {}

    class Recording(SaliencyModel):
        name = "recording"

        def predict(self, crops):
            seen["map_input"] = crops.copy()
            return np.ones(crops.shape[:3], np.float32)

    def network(x):
        seen["net_input"] = x.copy()
        return {"expression": np.zeros((len(x), 7), np.float32)}

    box = (150, 60, 260, 190)                     # a 169-px crop square, capped at 40
    cfg = ClassifierConfig(name="cap", backbone="mobilenet_v2", tasks=("expression",), input_size=64,
                           saliency="recording", ratio=0.0, max_crop_px=40, extra={"tta_flip": False})
    an = Analyzer(detector=GivenBoxes([box]), model=None)
    clf = Classifier(cfg.name, cfg, network)
    an.groups = [_Group(classifier=clf, tasks=cfg.tasks, saliency=Recording(), saliency_spec="recording",
                        crop_key=_crop_key(cfg))]
    next(an.analyze_batch([astronaut]))
    sharp = crop_face(astronaut, Face(Box(*box)), size=64)
    assert np.array_equal(seen["map_input"][0], sharp.pixels)
    want = clf.prepare(crop_face(astronaut, Face(Box(*box)), size=64, max_side=40).pixels[None])
    assert not np.allclose(want, clf.prepare(sharp.pixels[None]))
    ones = np.ones((1, 64, 64), np.float32)
    assert np.array_equal(seen["net_input"], to_input_array(want, ones, cfg))
    assert not np.array_equal(seen["net_input"], to_input_array(clf.prepare(sharp.pixels[None]), ones, cfg))
