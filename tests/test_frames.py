"""Results as tables (salface.frames.to_frame / result_rows) and Jupyter's ImageResult._repr_png_,
on results built by hand (no models)."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest
from PIL import Image

from salface.frames import result_rows, to_frame
from salface.track import IoUTracker
from salface.types import Box, Face, FaceResult, ImageResult, Prediction
from salface.video import FrameResult

AGE = {"0-2": 0.0, "4-6": 0.0, "8-13": 0.05, "15-20": 0.1, "25-32": 0.6, "38-43": 0.2,
       "48-53": 0.05, "60+": 0.0}
GENDER = {"male": 0.25, "female": 0.75}
EXPR = {"neutral": 0.1, "happy": 0.7, "sad": 0.05, "surprise": 0.05, "fear": 0.04, "disgust": 0.03,
        "anger": 0.03}


def _pred(task, probs):
    label = max(probs, key=probs.get)
    return Prediction(task=task, label=label, index=list(probs).index(label), probabilities=probs)


def _face(box, score=0.9, **preds):
    return FaceResult(face=Face(Box(*box), score=score), crop_box=Box(*box),
                      **{t: _pred(t, p) for t, p in preds.items()})


@pytest.fixture
def results():
    two = ImageResult(source="a.jpg", width=640, height=480, faces=[
        _face((10, 20, 110, 140), 0.95, age=AGE, gender=GENDER, expression=EXPR),
        _face((300, 40, 380, 130), 0.8, age=AGE, gender={"male": 0.9, "female": 0.1},
              expression=EXPR)])
    none = ImageResult(source="b.png", width=100, height=100)
    bad = ImageResult(source="c.jpg", error="truncated image file")
    return [two, none, bad]


def test_to_frame_columns_and_values(results):
    pd = pytest.importorskip("pandas")
    df = to_frame(results)
    assert len(df) == 4   # two faces, one image without faces, one error
    cols = list(df.columns)
    assert cols[:7] == ["source", "face", "x1", "y1", "x2", "y2", "score"]
    assert cols[-3:] == ["width", "height", "error"]
    assert cols[7:10] == ["age", "age_confidence", "age_p_0-2"]
    assert {f"age_p_{c}" for c in AGE} | {f"expression_p_{c}" for c in EXPR} | {
        "gender_p_male", "gender_p_female"} <= set(cols)
    assert len(cols) == 7 + 3 * 2 + len(AGE) + 2 + len(EXPR) + 3
    first, second, empty, bad = (df.iloc[i] for i in range(4))
    assert first["source"] == "a.jpg" and first["face"] == 0 and second["face"] == 1
    assert (first["x1"], first["y2"], first["score"]) == (10.0, 140.0, 0.95)
    assert first["age"] == "25-32" and first["age_confidence"] == 0.6
    assert first["age_p_38-43"] == 0.2 and first["expression_p_happy"] == 0.7
    assert first["gender"] == "female" and second["gender"] == "male"
    assert second["gender_p_male"] == 0.9 and pd.isna(first["error"])
    assert empty["source"] == "b.png" and pd.isna(empty["face"]) and empty["width"] == 100
    assert pd.isna(empty["age"]) and bad["error"] == "truncated image file" and pd.isna(bad["face"])
    assert str(df["face"].dtype) == "Int64"
    assert list(df[df.error.notna()].source) == ["c.jpg"]


def test_to_frame_options(results):
    pytest.importorskip("pandas")
    df = to_frame(results, probabilities=False)
    assert not any("_p_" in c for c in df.columns) and "age_confidence" in df.columns
    single = to_frame(results[0])            # one result is fine too
    assert list(single.face) == [0, 1]
    empty = to_frame([])
    assert len(empty) == 0 and "source" in empty.columns
    gen = to_frame(iter(results), progress=True, total=3)   # a generator, with a progress bar
    assert len(gen) == 4


def test_video_frames_get_frame_time_track_and_smoothed_columns():
    pd = pytest.importorskip("pandas")
    tracker = IoUTracker(smoothing=0.5)
    frames = []
    for i, happy in enumerate([0.9, 0.1]):
        faces = [_face((10 + i, 10, 60 + i, 70), expression={"neutral": 1 - happy, "happy": happy})]
        tracks = tracker.update(faces, i * 5, i * 0.5)
        frames.append(FrameResult(source="clip.mp4", frame=i * 5, time=i * 0.5, width=320,
                                  height=240, faces=faces, tracks=[t.id for t in tracks],
                                  smoothed=tracker.smoothed_faces(faces, tracks)))
    frames.append(FrameResult(source="clip.mp4", frame=10, time=1.0, width=320, height=240))
    df = to_frame(frames)
    assert list(df.columns[:5]) == ["source", "frame", "time", "track", "face"]
    assert list(df.frame) == [0, 5, 10] and list(df.time) == [0.0, 0.5, 1.0]
    assert list(df.track[:2]) == [1, 1] and pd.isna(df.track[2])
    # frame 5: raw says neutral (0.9), the track's average of 0.9 and 0.1 happy is 0.5 / 0.5
    assert df.expression[1] == "neutral" and df.expression_smoothed[1] == "neutral"
    assert df.expression_smoothed_confidence[1] == pytest.approx(0.5)
    assert df.expression_smoothed[0] == "happy"


def test_result_rows_need_no_pandas(results):
    rows = result_rows(results[0], probabilities=False)
    assert rows[0]["age"] == "25-32" and rows[1]["face"] == 1 and "age_p_0-2" not in rows[0]
    assert result_rows(results[2]) == [{"source": "c.jpg", "width": 0, "height": 0,
                                        "error": "truncated image file"}]


def test_to_frame_without_pandas_says_how_to_install(monkeypatch, results):
    monkeypatch.setitem(sys.modules, "pandas", None)   # import pandas now fails
    with pytest.raises(ImportError, match=r"to_frame needs pandas.*pip install salface\[notebook\]"):
        to_frame(results)


def test_repr_png_shows_the_annotated_image(results):
    img = np.full((480, 640, 3), 200, np.uint8)
    res = ImageResult(source="a.jpg", width=640, height=480, faces=results[0].faces, image=img)
    png = res._repr_png_()
    shown = np.asarray(Image.open(io.BytesIO(png)))
    assert shown.shape == (480, 640, 3)
    assert (shown != 200).any(axis=2)[20, 10:110].all()       # the first box's top edge is drawn
    assert (shown[300:, 400:] == 200).all()                   # away from the faces: untouched
    assert results[0]._repr_png_() is None                    # no pixels kept: plain repr
