"""``salface serve`` through a real Uvicorn server on loopback: answers, bad uploads, limits."""

from __future__ import annotations

import io
import threading
import time

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("multipart")
httpx = pytest.importorskip("httpx")

from salface.serve.app import background, create_app  # noqa: E402
from salface.serve.limits import MB, Settings  # noqa: E402
from salface.serve.service import Service  # noqa: E402

LIMITS = dict(max_upload_mb=1.0, max_pixels=2_000_000, max_faces=5)


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def loaded_service(settings: Settings) -> Service:
    """A loaded Service with YuNet installed from ../shared when it is there (so the default
    detector, ``auto``, is YuNet whatever ran before); without ../shared, ``auto`` is BlazeFace."""
    from conftest import SHARED
    from salface import hub

    yunet = SHARED / "weights" / "yunet" / "face_detection_yunet_2023mar.onnx"
    if yunet.exists() and hub.verify_remote("yunet") != "ok":
        hub.ensure_file("yunet", source=str(yunet), progress=False)
    return Service(settings).load()


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SALFACE_HOME", str(tmp_path_factory.mktemp("serve_home")))
        yield


@pytest.fixture(scope="module")
def service(home):
    return loaded_service(Settings(**LIMITS))


@pytest.fixture(scope="module")
def url(service):
    with background(create_app(service.settings, service)) as base:
        yield base


@pytest.fixture(scope="module")
def client(url):
    with httpx.Client(base_url=url, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def astronaut_png(astronaut):
    return _png(astronaut)


def _post(client, data: bytes, name="astronaut.png", ctype="image/png", path="/v1/analyze", **params):
    return client.post(path, params=params, files={"file": (name, data, ctype)})


# ------------------------------------------------------------------------------ answers

def test_astronaut_same_as_in_process_analyzer(client, astronaut, astronaut_png, service):
    from salface.pipeline import Analyzer
    from salface.types import ImageResult

    r = _post(client, astronaut_png)
    assert r.status_code == 200, r.text
    got = r.json()
    # a fresh one, built as a user would, with the detector the server's default ("auto") chose
    assert got["detector"] in ("yunet+blazeface", "yunet", "blazeface")
    faces = Analyzer(detector=got["detector"]).analyze(astronaut)
    want = ImageResult("astronaut.png", 512, 512, faces, detector=got["detector"]).to_dict()
    assert len(got["faces"]) == 1 and got["source"] == "astronaut.png"
    assert (got["width"], got["height"]) == (512, 512)
    g, w = got["faces"][0], want["faces"][0]
    assert g["expression"]["label"] == "happy"  # the README's known answer
    for task in ("age", "gender", "expression"):
        assert g[task]["label"] == w[task]["label"]
        for k, p in w[task]["probabilities"].items():
            assert g[task]["probabilities"][k] == pytest.approx(p, abs=2e-4)
    assert g["box"] == pytest.approx(w["box"], abs=0.02)
    assert set(g) == set(w)  # same fields as `salface analyze` prints


def test_raw_body_tasks_and_max_faces(client, astronaut_png):
    full = _post(client, astronaut_png).json()
    raw = client.post("/v1/analyze", content=astronaut_png,
                      headers={"content-type": "image/png", "x-filename": "../x/a.png"})
    assert raw.status_code == 200
    assert raw.json()["faces"] == full["faces"] and raw.json()["source"] == "a.png"
    only = client.post("/v1/analyze", params={"tasks": "expression"}, content=astronaut_png,
                       headers={"content-type": "image/png"}).json()
    f = only["faces"][0]
    assert "expression" in f and "age" not in f and "gender" not in f
    assert f["expression"] == full["faces"][0]["expression"]
    # options as form fields work too
    form = client.post("/v1/analyze", data={"tasks": "age"},
                       files={"file": ("a.png", astronaut_png, "image/png")}).json()
    assert set(form["faces"][0]) & {"age", "gender", "expression"} == {"age"}
    # two astronauts side by side, max_faces=1 keeps the better one
    two = np.concatenate([np.asarray(Image.open(io.BytesIO(astronaut_png)))] * 2, axis=1)
    both = _post(client, _png(two), name="two.png").json()
    assert len(both["faces"]) == 2
    one = _post(client, _png(two), name="two.png", max_faces=1).json()
    assert len(one["faces"]) == 1 and one["faces"][0]["score"] == max(f["score"] for f in both["faces"])


def test_no_face_and_whole_detector(client):
    flat = _png(np.full((120, 160, 3), 128, np.uint8))
    r = _post(client, flat, name="flat.png")
    assert r.status_code == 200 and r.json()["faces"] == []
    w = _post(client, flat, name="flat.png", detector="whole").json()
    assert len(w["faces"]) == 1 and w["faces"][0]["box"] == {"x1": 0.0, "y1": 0.0, "x2": 160.0, "y2": 120.0}


def test_second_look_detector_by_name(client, astronaut_png, yunet_model):
    """A request may name `yunet+blazeface`; on a flat picture it still finds no face."""
    r = _post(client, astronaut_png, detector="yunet+blazeface")
    assert r.status_code == 200, r.text
    assert r.json()["detector"] == "yunet+blazeface" and len(r.json()["faces"]) == 1
    flat = _post(client, _png(np.full((120, 160, 3), 128, np.uint8)), name="flat.png", detector="yunet+blazeface")
    assert flat.status_code == 200 and flat.json()["faces"] == []


def test_explain_panels(client, astronaut_png):
    r = _post(client, astronaut_png, path="/v1/explain", size=64)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["saliency"] == "mlnet" and body["ratio"] == pytest.approx(0.3)
    (face,) = body["faces"]
    assert face["labels"]["expression"] == "happy"
    import base64

    head, b64 = face["triplet"].split(",", 1)
    assert head == "data:image/png;base64"
    trip = np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))))
    assert trip.shape == (64, 3 * 64 + 2 * 4, 3)
    if body["cams"]["available"]:
        assert set(face["cams"]) == {"age", "gender", "expression"}
        assert face["cams"]["gender"]["label"] == face["labels"]["gender"]
    else:
        assert face["cams"] == {} and body["cams"]["detail"]
    png = _post(client, astronaut_png, path="/v1/explain", size=64, format="png")
    assert png.headers["content-type"] == "image/png"
    n_tiles = 3 + (3 if body["cams"]["available"] else 0)
    assert Image.open(io.BytesIO(png.content)).size == (n_tiles * 64 + (n_tiles - 1) * 4, 64)
    none = _post(client, astronaut_png, path="/v1/explain", format="png", face=3)
    assert none.status_code == 422 and none.json()["error"] == "no_such_face"


def test_cams_agree_with_salface_explain(service, astronaut):
    """The server's NumPy CAM equals salface.explain's torch CAM (same class, same size)."""
    pytest.importorskip("torch")
    from salface.crop import crop_for_config
    from salface.explain import class_activation_maps
    from salface.models.preprocess import to_input_tensor
    from salface.serve.cams import CamMaker
    from salface.serve.service import Options, Upload

    from salface import hub

    det = "yunet" if hub.verify_remote("yunet") == "ok" else "blazeface"   # no ../shared: no YuNet
    result, image = service.analyze(Upload(_png(astronaut), "a.png"),
                                    Options(det, ("age", "gender", "expression"), 5))
    maker = CamMaker(service.analyzer)
    cams, tiles, notes = maker.maps(image, result.faces, ("age", "gender", "expression"), 96)
    assert notes == [] and len(tiles) == 1 and set(cams[0]) == {"age", "gender", "expression"}
    for g, net in maker._networks():
        cfg = g.config
        rgb = crop_for_config(image, result.faces[0].face, cfg).pixels[None]
        x = to_input_tensor(g.classifier.prepare(rgb), g.saliency(rgb), cfg)
        for t in g.tasks:
            want = class_activation_maps(net.module, x, t, class_index=getattr(result.faces[0], t).index,
                                         size=(96, 96)).maps[0]
            assert np.abs(cams[0][t] - want).max() < 0.02, t


# ------------------------------------------------------------------------------ bad uploads

def _big_blank_png(w: int, h: int) -> bytes:
    return _png(np.zeros((h, w), np.uint8))  # compresses to a few KB


@pytest.mark.parametrize("case,status,error,reason", [
    ("garbage", 422, "not_an_image", "not a recognised image format"),
    ("truncated", 422, "truncated_image", "truncated"),
    ("empty", 400, "empty_upload", "empty"),
    ("oversize", 413, "upload_too_large", "upload limit is 1,048,576 bytes"),
    ("pixels", 413, "image_too_large", "exceeds the limit of 2,000,000"),
    ("text", 415, "unsupported_media_type", "'text/plain'"),
])
def test_bad_upload_multipart(client, astronaut_png, case, status, error, reason):
    data, ctype = {
        "garbage": (b"this is not an image at all" * 20, "image/png"),
        "truncated": (astronaut_png[: len(astronaut_png) // 2], "image/png"),
        "empty": (b"", "image/png"),
        "oversize": (np.random.default_rng(0).integers(0, 255, int(1.5 * MB), np.uint8).tobytes(),
                     "image/jpeg"),
        "pixels": (_big_blank_png(2000, 1200), "image/png"),
        "text": (b"hello", "text/plain"),
    }[case]
    r = _post(client, data, name=f"{case}.bin", ctype=ctype)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] == error and reason in body["detail"], body
    assert set(body) == {"error", "detail"}


@pytest.mark.parametrize("case,status,error", [
    ("garbage", 422, "not_an_image"), ("empty", 400, "empty_upload"),
    ("oversize", 413, "upload_too_large"), ("pixels", 413, "image_too_large"),
    ("no_type", 415, "unsupported_media_type"), ("json", 415, "unsupported_media_type"),
])
def test_bad_upload_raw_body(client, case, status, error):
    data, ctype = {
        "garbage": (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "image/png"),
        "empty": (b"", "image/png"),
        "oversize": (b"\xff" * (2 * int(MB)), "image/jpeg"),
        "pixels": (_big_blank_png(1500, 1500), "image/png"),
        "no_type": (b"abc", None),
        "json": (b"{}", "application/json"),
    }[case]
    headers = {"content-type": ctype} if ctype else {}
    r = client.post("/v1/analyze", content=data, headers=headers)
    assert r.status_code == status, r.text
    assert r.json()["error"] == error


def test_chunked_upload_over_limit(client):
    def chunks():  # no Content-Length: the server counts as the body arrives
        for _ in range(40):
            yield b"\0" * 65536

    r = client.post("/v1/analyze", content=chunks(), headers={"content-type": "image/png"})
    assert r.status_code == 413 and r.json()["error"] == "upload_too_large"


def test_malformed_requests(client, astronaut_png):
    r = client.post("/v1/analyze", files={"image": ("a.png", astronaut_png, "image/png")})
    assert r.status_code == 400 and r.json()["error"] == "missing_file"
    r = client.post("/v1/analyze", content=b"--xx\r\nnot really multipart",
                    headers={"content-type": "multipart/form-data; boundary=xx"})
    assert 400 <= r.status_code < 500 and r.json()["error"] in ("bad_multipart", "missing_file")
    for params, word in [({"max_faces": 99}, "max_faces"), ({"max_faces": "x"}, "max_faces"),
                         ({"tasks": "age,height"}, "tasks"), ({"detector": "eyes"}, "detector")]:
        r = _post(client, astronaut_png, **params)
        assert r.status_code == 422 and r.json()["error"] == "invalid_parameter"
        assert word in r.json()["detail"]
    r = client.get("/v1/nothing")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    # after all that, the worker still answers
    assert _post(client, astronaut_png).status_code == 200


# ------------------------------------------------------------------------------ server info

def test_health_and_models(client, service):
    from salface import hub

    h = client.get("/health").json()
    assert h["status"] == "ok" and h["max_concurrent"] == 2 and h["active"] == 0
    m = client.get("/v1/models").json()
    by_name = {c["name"]: c for c in m["classifiers"]}
    assert set(by_name) == {"age-gender-ensemble", "default-expression"}
    assert by_name["age-gender-ensemble"]["labels"]["gender"] == ["male", "female"]
    assert by_name["age-gender-ensemble"]["tasks"] == ["age", "gender"]
    assert by_name["default-expression"]["tasks"] == ["expression"]
    manifest = hub.load_manifest()["models"]
    for c in [*by_name.values(), *m["saliency"]]:  # the manifest's checksum, and the file has it
        entry = manifest[c["name"]]
        assert c["sha256"] in (entry["sha256"], entry.get("onnx", {}).get("sha256"))
        assert c["sha256"] == hub.sha256_file(hub.bundled_dir() / c["file"])
    assert m["saliency"][0]["name"] == "mlnet-mobilenetv2-nus"
    default = m["detectors"]["loaded"][m["detectors"]["default"]]   # "auto", loaded at start-up
    if hub.verify_remote("yunet") == "ok":   # installed from ../shared by loaded_service: auto = YuNet
        assert default["sha256"] == hub.REMOTE_FILES["yunet"].sha256
    else:                                    # no ../shared: auto = the bundled BlazeFace
        assert default["sha256"] == hub.sha256_file(hub.bundled_dir() / default["file"])
    assert m["limits"]["max_upload_bytes"] == MB and m["limits"]["max_pixels"] == 2_000_000
    page = client.get("/")
    assert page.status_code == 200 and "salface" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/static/app.js").status_code == 200
    assert "/v1/analyze" in client.get("/openapi.json").json()["paths"]


# ------------------------------------------------------------------------------ limits

class SlowService(Service):
    """The loaded service, ``delay`` seconds slower per request (a busy server)."""

    def __init__(self, settings: Settings, base: Service, delay: float) -> None:
        super().__init__(settings)
        self.base, self.delay = base, delay

    @property
    def loaded(self) -> bool:
        return True

    def load(self) -> "SlowService":
        return self

    def analyze(self, upload, opts):
        time.sleep(self.delay)
        return self.base.analyze(upload, opts)

    def models(self):
        return self.base.models()


def _wait_for(client, key: str, value: int, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while client.get("/health").json()[key] != value:
        assert time.monotonic() < end, f"/health never showed {key} == {value}"
        time.sleep(0.02)


def test_concurrency_limit_gives_503_with_retry_after(service, astronaut_png):
    settings = Settings(**LIMITS, max_concurrent=1, max_queue=1)
    with background(create_app(settings, SlowService(settings, service, 1.5))) as base, \
            httpx.Client(base_url=base, timeout=60) as c:
        codes: list[int] = []

        def go():
            codes.append(_post(c, astronaut_png).status_code)

        first = threading.Thread(target=go)
        first.start()
        _wait_for(c, "active", 1)
        second = threading.Thread(target=go)
        second.start()
        _wait_for(c, "waiting", 1)
        t0 = time.monotonic()
        r = _post(c, astronaut_png)
        assert time.monotonic() - t0 < 1.0  # refused at once, not after waiting
        assert r.status_code == 503 and r.json()["error"] == "server_busy"
        assert int(r.headers["retry-after"]) >= 1
        first.join()
        second.join()
        assert codes == [200, 200]  # the running and the queued request both finish
        assert c.get("/health").json()["refused"] == 1


def test_timeout_gives_504_and_keeps_the_slot_until_done(service, astronaut_png):
    settings = Settings(**{**LIMITS, "timeout": 0.5}, max_concurrent=1, max_queue=0)
    with background(create_app(settings, SlowService(settings, service, 1.5))) as base, \
            httpx.Client(base_url=base, timeout=60) as c:
        r = _post(c, astronaut_png)
        assert r.status_code == 504 and r.json()["error"] == "timeout"
        assert c.get("/health").json()["active"] == 1  # the thread still runs: its slot is taken
        assert _post(c, astronaut_png).status_code == 503
        _wait_for(c, "active", 0)


# ------------------------------------------------------------------------------ settings, CLI

def test_settings_validation_and_cli():
    with pytest.raises(ValueError, match="max_pixels"):
        Settings(max_pixels=0)
    with pytest.raises(ValueError, match="tasks"):
        Settings(tasks=("age", "height"))
    s = Settings(port=9000, tasks=("expression",))
    assert Settings.from_json(s.to_json()) == s

    from typer.testing import CliRunner

    from salface.cli import app

    res = CliRunner().invoke(app, ["serve", "--help"])
    assert res.exit_code == 0
    for opt in ("--max-upload-mb", "--max-pixels", "--max-faces", "--max-concurrent", "--timeout",
                "--workers"):
        assert opt in res.output
    bad = CliRunner().invoke(app, ["serve", "--max-pixels", "0"])
    assert bad.exit_code == 2 and "max_pixels" in bad.output


def test_fast_profile_service(home):
    """`salface serve --fast`: the service runs the default models' fast profile and says so."""
    from salface import hub

    if any(n not in hub.load_manifest()["models"] for n in set(hub.FAST_MODELS.values())):
        pytest.skip("the fast profile's models are not bundled")
    svc = loaded_service(Settings(**LIMITS, fast=True))
    assert svc.analyzer.fast and svc.models()["fast"] is True
    assert {c["name"] for c in svc.models()["classifiers"]} == {"default-age-gender", "default-expression"}
