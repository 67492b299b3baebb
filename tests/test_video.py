"""Video and camera analysis: frame sampling, the IoU tracker and its smoothing, per-frame output,
annotated videos, per-track summaries and clean errors for bad files (salface.video, salface.track,
`salface analyze clip.mp4`).

The test video is made here: the astronaut's head (scikit-image) moving 12 px a frame across a
plain grey background for 20 frames, then 10 frames without a face, 10 frames/s, written with
OpenCV (mp4v)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from salface.track import IoUTracker, iou_matrix, match
from salface.types import Box, Face, FaceResult, Prediction
from salface.video import (FrameSampler, VideoError, analyze_video, is_video_path, iter_frames,
                           open_video)

FPS, N_FACE, N_EMPTY, STEP = 10, 20, 10, 12
SIZE = (480, 320)   # width, height


def _write_video(path, astronaut, fourcc="mp4v"):
    head = cv2.cvtColor(astronaut[20:240, 120:320], cv2.COLOR_RGB2BGR)   # 220 × 200
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), FPS, SIZE)
    assert w.isOpened()
    for i in range(N_FACE + N_EMPTY):
        frame = np.full((SIZE[1], SIZE[0], 3), 180, np.uint8)
        if i < N_FACE:
            x = 10 + STEP * i
            frame[50:270, x:x + 200] = head
        w.write(frame)
    w.release()
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory, astronaut):
    return _write_video(tmp_path_factory.mktemp("video") / "clip.mp4", astronaut)


@pytest.fixture(scope="module")
def detector():
    """YuNet: bundled / cached, else from ../shared; skip when neither is there."""
    from salface.detect import get_detector

    try:
        return get_detector("yunet")
    except Exception:
        from conftest import shared_path

        return get_detector("yunet", model_path=shared_path(
            "weights", "yunet", "face_detection_yunet_2023mar.onnx"))


@pytest.fixture
def cli_yunet(detector):
    """Make `salface analyze`'s default detector loadable (install from ../shared if needed)."""
    from salface.detect import get_detector

    try:
        get_detector("yunet")
    except Exception:
        try:
            from salface.hub import ensure_file
        except ImportError:
            from salface.models.weights import ensure_file
        ensure_file("yunet", source=str(detector.model_path), progress=False)


@pytest.fixture(scope="module")
def detect_only(detector):
    from salface.pipeline import Analyzer

    return Analyzer(detector=detector, model=None)


def _face(box, **probs) -> FaceResult:
    preds = {t: Prediction(task=t, label=max(p, key=p.get), index=list(p).index(max(p, key=p.get)),
                           probabilities=p) for t, p in probs.items()}
    return FaceResult(face=Face(Box(*box), score=0.9), crop_box=Box(*box), **preds)


# ------------------------------------------------------------------ tracker (no models)

def test_iou_matrix_known_values():
    a = [Box(0, 0, 10, 10), Box(100, 100, 110, 110)]
    b = [Box(5, 0, 15, 10), Box(0, 0, 10, 10)]
    m = iou_matrix(a, b)
    assert m.shape == (2, 2)
    assert m[0, 0] == pytest.approx(50 / 150) and m[0, 1] == 1.0 and m[1].max() == 0.0
    assert iou_matrix([], b).shape == (0, 2)


def test_greedy_and_hungarian_matching_differ_where_they_should():
    # track 0 overlaps face 0 most (0.6), but face 0 is track 1's only match: greedy takes (0, 0)
    # and leaves track 1 unmatched; Hungarian maximises the total, (0, 1) + (1, 0)
    iou = np.array([[0.6, 0.5], [0.55, 0.0]])
    assert match(iou, 0.3, "greedy") == [(0, 0)]
    pytest.importorskip("scipy")
    assert match(iou, 0.3, "hungarian") == [(0, 1), (1, 0)]
    assert match(iou, 0.3, "auto") == [(0, 1), (1, 0)]
    assert match(iou, 0.58, "hungarian") == [(0, 0)]   # pairs below the threshold never count


def test_tracker_falls_back_to_greedy_without_scipy(monkeypatch):
    import salface.track as track

    monkeypatch.setattr(track, "_hungarian_available", lambda: False)
    assert track.match(np.array([[0.6, 0.5], [0.55, 0.0]]), 0.3, "auto") == [(0, 0)]
    with pytest.raises(ImportError, match="greedy"):
        IoUTracker(matcher="hungarian")


def test_tracker_ids_smoothing_and_summary():
    tr = IoUTracker(iou_threshold=0.3, max_missed=1, smoothing=0.75)
    happy = {"neutral": 0.2, "happy": 0.8}
    neutral = {"neutral": 0.9, "happy": 0.1}
    a = tr.update([_face((0, 0, 10, 10), expression=happy)], frame=0, time=0.0)
    b = tr.update([_face((1, 0, 11, 10), expression=neutral),
                   _face((50, 50, 60, 60), expression=neutral)], frame=1, time=0.1)
    assert [t.id for t in a] == [1] and [t.id for t in b] == [1, 2]
    # EMA with α = 0.75: 0.75 · 0.9 + 0.25 · 0.2 = 0.725 neutral → the smoothed label flips
    p = b[0].predictions()["expression"]
    assert p.probabilities["neutral"] == pytest.approx(0.725) and p.label == "neutral"
    assert sum(p.probabilities.values()) == pytest.approx(1.0)
    c = tr.update([_face((2, 0, 12, 10), expression=neutral)], frame=2, time=0.2)
    assert c[0].predictions()["expression"].probabilities["neutral"] == pytest.approx(0.85625)
    tr.update([], frame=3, time=0.3)   # track 1 misses once (allowed), track 2 a second time: ends
    assert [t.id for t in tr.active] == [1]
    d = tr.update([_face((2, 0, 12, 10), expression=happy), _face((50, 50, 60, 60), expression=happy)],
                  frame=4, time=0.4)
    assert [t.id for t in d] == [1, 3]      # track 1 resumes; the face at track 2's place is new
    s = {x["track"]: x for x in tr.summary()}
    assert s[1]["frames"] == 4 and s[1]["first_time"] == 0.0 and s[1]["last_time"] == 0.4
    e = s[1]["expression"]
    assert e["votes"] == {"neutral": 2, "happy": 2} and e["majority"] == "neutral"  # tie: first class
    assert e["mean_probabilities"]["neutral"] == pytest.approx((0.2 + 0.9 + 0.9 + 0.2) / 4, abs=1e-4)
    # smoothed neutral: 0.2 → 0.725 → 0.85625 → 0.3640625: happy, neutral, neutral, happy
    assert [(x["label"], x["start"], x["end"], x["frames"]) for x in e["timeline"]] == [
        ("happy", 0.0, 0.0, 1), ("neutral", 0.1, 0.2, 2), ("happy", 0.4, 0.4, 1)]


def test_smoothed_faces_carry_the_track_predictions():
    tr = IoUTracker(smoothing=1.0)   # no smoothing: smoothed == raw
    f = _face((0, 0, 10, 10), gender={"male": 0.3, "female": 0.7})
    tracks = tr.update([f], 0, 0.0)
    (s,) = tr.smoothed_faces([f], tracks)
    assert s.gender.label == "female" and s.gender.probabilities == pytest.approx(f.gender.probabilities)
    assert s.face is f.face and s.age is None


def test_frame_sampler():
    times = [i / 30 for i in range(30)]        # one second at 30 frames/s
    every = FrameSampler(every=4)
    assert [i for i, t in enumerate(times) if every.take(i, t)] == [0, 4, 8, 12, 16, 20, 24, 28]
    fps = FrameSampler(fps=5)
    assert [i for i, t in enumerate(times) if fps.take(i, t)] == [0, 6, 12, 18, 24]
    assert fps.output_fps(30) == 5 and FrameSampler(every=3).output_fps(30) == 10
    with pytest.raises(ValueError, match="not both"):
        FrameSampler(every=2, fps=5)


def test_is_video_path(tmp_path, clip):
    assert is_video_path(clip) and is_video_path(tmp_path / "not_there.MOV")
    renamed = tmp_path / "clip.bin"
    renamed.write_bytes(clip.read_bytes())      # unknown ending: the ftyp signature decides
    assert is_video_path(renamed)
    (tmp_path / "x.png").write_bytes(clip.read_bytes())   # image endings are images
    assert not is_video_path(tmp_path / "x.png")
    (tmp_path / "notes.txt").write_text("hello")
    assert not is_video_path(tmp_path / "notes.txt")


# ------------------------------------------------------------------ reading frames

def test_frames_and_timestamps(clip):
    cap, info = open_video(clip)
    cap.release()
    assert (info.fps, info.frame_count, info.width, info.height) == (FPS, 30, *SIZE)
    frames = list(iter_frames(clip))
    assert [i for i, _, _ in frames] == list(range(30))
    assert [t for _, t, _ in frames] == pytest.approx([i / FPS for i in range(30)])
    assert frames[0][2].shape == (SIZE[1], SIZE[0], 3) and frames[0][2].dtype == np.uint8
    assert [i for i, _, _ in iter_frames(clip, fps=2.5)] == [0, 4, 8, 12, 16, 20, 24, 28]
    assert [i for i, _, _ in iter_frames(clip, every=7, max_frames=3)] == [0, 7, 14]
    assert [i for i, _, _ in iter_frames(clip, duration=0.45)] == [0, 1, 2, 3, 4]


def test_unreadable_files_raise_video_error(tmp_path, clip):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video at all " * 50)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    for path, reason in [(garbage, "could not open"), (cut, "truncated"), (empty, "empty file"),
                         (tmp_path / "none.mp4", "not found")]:
        with pytest.raises(VideoError, match=reason) as exc:
            list(iter_frames(path))
        assert exc.value.source == str(path)


# ------------------------------------------------------------------ analysis (YuNet)

def test_moving_face_keeps_one_track(clip, detect_only):
    run = analyze_video(clip, detect_only)
    frames = list(run)
    assert [f.frame for f in frames] == list(range(30))
    assert [f.time for f in frames] == pytest.approx([i / FPS for i in range(30)])
    assert all(len(f.faces) == 1 for f in frames[:N_FACE])
    assert all(f.faces == [] and f.tracks == [] for f in frames[N_FACE:])   # no face, no face
    assert {f.tracks[0] for f in frames[:N_FACE]} == {1}
    xs = [f.faces[0].face.box.center[0] for f in frames[:N_FACE]]
    assert np.diff(xs) == pytest.approx(STEP, abs=4)   # the box follows the head
    d = frames[3].to_dict()
    assert d["frame"] == 3 and d["time"] == 0.3 and d["faces"][0]["track"] == 1
    s = run.summary()
    assert s["frames_analysed"] == 30 and s["error"] is None
    assert [(t["track"], t["frames"], t["first_frame"], t["last_frame"]) for t in s["tracks"]] == [
        (1, N_FACE, 0, N_FACE - 1)]


def test_every_samples_frames(clip, detect_only):
    frames = list(analyze_video(clip, detect_only, every=3))
    assert [f.frame for f in frames] == list(range(0, 30, 3))
    assert [f.time for f in frames] == pytest.approx([i / FPS for i in range(0, 30, 3)])
    assert {f.tracks[0] for f in frames if f.frame < N_FACE} == {1}   # 36 px steps still overlap


def test_truncated_video_keeps_earlier_frames(tmp_path, astronaut, detect_only):
    # MJPEG in AVI is readable up to the cut (an MP4 cut short loses its index: nothing to read)
    full = _write_video(tmp_path / "full.avi", astronaut, "MJPG")
    cut = tmp_path / "cut.avi"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    run = analyze_video(cut, detect_only)
    got = []
    with pytest.raises(VideoError, match="truncated") as exc:
        for fr in run:
            got.append(fr)
    assert exc.value.source == str(cut)
    assert 5 <= len(got) < 25 and [f.frame for f in got] == list(range(len(got)))
    assert run.summary()["error"] == exc.value.reason
    assert run.summary()["tracks"][0]["frames"] == min(len(got), N_FACE)


def test_smoothing_with_the_shipped_expression_model(clip, detector):
    from salface.pipeline import Analyzer

    try:
        an = Analyzer(detector=detector, tasks=("expression",))
    except Exception as exc:   # the shipped model not loadable in this checkout
        pytest.skip(f"shipped expression model unavailable: {exc}")
    tracker = IoUTracker(smoothing=0.3)
    run = analyze_video(clip, an, every=2, tracker=tracker, keep_images=True)
    frames = [f for f in run if f.faces]
    assert len(frames) == N_FACE // 2
    prev = None
    for f in frames:
        raw = f.faces[0].expression.probabilities
        sm = f.smoothed[0].expression.probabilities
        expect = raw if prev is None else {k: 0.3 * raw[k] + 0.7 * prev[k] for k in raw}
        assert sm == pytest.approx(expect, abs=1e-6)
        prev = sm
    summ = run.summary()["tracks"][0]["expression"]
    assert summ["majority"] == "happy" and summ["timeline"][0]["label"] == "happy"
    png = frames[0]._repr_png_()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_camera_path_with_a_file_standing_in(monkeypatch, clip, detect_only):
    """The live branch (one frame at a time, wall-clock times) with the clip as 'camera 0'."""
    import salface.video as video

    real = video.open_video

    def fake_camera(source):
        assert source == 0
        cap, info = real(clip)
        return cap, video.VideoInfo("camera 0", info.fps, 0, info.width, info.height, live=True)

    monkeypatch.setattr(video, "open_video", fake_camera)
    run = analyze_video(0, detect_only, max_frames=6)
    frames = list(run)
    assert [f.frame for f in frames] == list(range(6)) and frames[0].time == 0.0
    assert all(b.time > a.time for a, b in zip(frames, frames[1:]))   # seconds since the start
    assert {f.tracks[0] for f in frames} == {1} and frames[0].source == "camera 0"


# ------------------------------------------------------------------ CLI

def _read_video(path):
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened()
    n = 0
    while cap.read()[0]:
        n += 1
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    cap.release()
    return n, size


def test_cli_video_jsonl_annotate_summary(clip, tmp_path, cli_yunet):
    from salface.cli import app

    out = tmp_path / "out"
    res = CliRunner().invoke(app, [
        "analyze", str(clip), "--detect-only", "--saliency", "none", "--every", "2",
        "--annotate", str(out / "ann.mp4"), "--summary", str(out / "tracks.json"),
        "-o", str(out / "frames.jsonl"), "--no-progress"])
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in (out / "frames.jsonl").read_text().splitlines()]
    assert [x["frame"] for x in lines] == list(range(0, 30, 2))       # JSON Lines by default
    assert [x["time"] for x in lines] == pytest.approx([i / FPS for i in range(0, 30, 2)])
    assert [len(x["faces"]) for x in lines] == [1] * 10 + [0] * 5
    assert {x["faces"][0]["track"] for x in lines[:10]} == {1}
    assert _read_video(out / "ann.mp4") == (15, SIZE)
    summary = json.loads((out / "tracks.json").read_text())["videos"][0]
    assert summary["frames_analysed"] == 15 and summary["tracks"][0]["frames"] == 10


def test_cli_bad_videos_are_error_rows(tmp_path, astronaut, cli_yunet):
    from salface.cli import app

    full = _write_video(tmp_path / "full.avi", astronaut, "MJPG")
    cut = tmp_path / "cut.avi"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"junk" * 100)
    res = CliRunner().invoke(app, ["analyze", str(cut), str(garbage), "--detect-only",
                                   "--saliency", "none", "-f", "csv", "--no-progress",
                                   "-o", str(tmp_path / "r.csv")])
    assert res.exit_code == 1, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)   # no traceback
    import csv

    rows = list(csv.DictReader(open(tmp_path / "r.csv")))
    kept = [r for r in rows if r["source"] == str(cut) and not r["error"]]
    assert len(kept) >= 5 and [int(r["frame"]) for r in kept] == list(range(len(kept)))
    errors = {r["source"]: r["error"] for r in rows if r["error"]}
    assert "truncated" in errors[str(cut)] and "could not open" in errors[str(garbage)]


def test_cli_missing_camera_is_an_error_row(tmp_path, astronaut):
    from PIL import Image

    from salface.cli import app

    img = tmp_path / "img.png"
    Image.fromarray(astronaut).save(img)
    res = CliRunner().invoke(app, ["analyze", str(img), "--camera", "37", "--detector", "whole",
                                   "--detect-only", "--no-progress", "-f", "json"])
    assert res.exit_code == 1, res.output
    data = json.loads(res.stdout)
    assert data[0]["source"] == str(img) and len(data[0]["faces"]) == 1
    assert data[1] == {"source": "camera 37", "width": 0, "height": 0, "faces": [],
                       "error": "could not open the camera (no such device, or it is busy)"}
