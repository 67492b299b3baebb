"""The web page of ``salface serve`` in a real headless Chromium (Debian's ``chromium`` package,
driven by Playwright; no browser download): upload through the file input, read the labels off
the page, check them against the API. ``SALFACE_SCREENSHOT=1`` also writes
``docs/img/serve_page.png``."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")
sync_api = pytest.importorskip("playwright.sync_api")

from salface.serve.app import background, create_app  # noqa: E402
from salface.serve.limits import Settings  # noqa: E402
from test_serve import loaded_service  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("SALFACE_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TASKS = ("age", "gender", "expression")

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} "
                                "(apt-get install chromium chromium-driver)")


@pytest.fixture
def browser_page(tmp_path):
    with sync_api.sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=str(CHROMIUM), headless=True, args=ARGS,
            viewport={"width": 1280, "height": 860}, accept_downloads=True)
        try:
            page = ctx.new_page()
            page.problems = []  # console errors (a CSP violation shows up here) and page errors
            expected = "the server responded with a status of 422"  # the broken upload's answer
            page.on("console", lambda m: m.type == "error" and expected not in m.text
                    and page.problems.append(m.text))
            page.on("pageerror", lambda e: page.problems.append(str(e)))
            yield page
        finally:
            ctx.close()


def test_page_upload_labels_match_api(tmp_path, astronaut, browser_page):
    page = browser_page
    photo = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(photo)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n but then nothing an image needs")
    settings = Settings()
    with background(create_app(settings, loaded_service(settings))) as url:
        api = httpx.post(f"{url}/v1/analyze", timeout=60,
                         files={"file": ("astronaut.png", photo.read_bytes(), "image/png")}).json()
        page.goto(f"{url}/")
        page.wait_for_selector("#server-status.pill-ok", timeout=30_000)
        choices = httpx.get(f"{url}/v1/models", timeout=30).json()["detectors"]["choices"]
        assert {"auto", "yunet", "blazeface", "whole"} <= set(choices)
        options = page.locator("#opt-detector option")
        assert [options.nth(i).get_attribute("value") for i in range(options.count())] == choices

        page.set_input_files("#file-input", str(broken))
        page.wait_for_selector('.card[data-status="error"]', timeout=60_000)
        err = page.locator('.card[data-status="error"] .error-box')
        assert err.get_attribute("data-error") == "not_an_image"
        assert "not a recognised image format" in err.inner_text()

        page.set_input_files("#file-input", str(photo))
        page.wait_for_selector('.card[data-status="done"]', timeout=60_000)
        card = page.locator('.card[data-status="done"]')
        assert card.locator(".face-card").count() == len(api["faces"]) == 1
        shown = {t: card.locator(f'.face-card[data-face="0"] .prediction[data-task="{t}"] '
                                 '.prediction-label').inner_text() for t in TASKS}
        assert shown == {t: api["faces"][0][t]["label"] for t in TASKS}
        assert shown["expression"] == "happy"
        # probability bars: one row per label of each task, the top one marked
        assert card.locator('.prediction[data-task="age"] .bars li').count() == 8
        assert card.locator('.prediction[data-task="gender"] .bars li.top .name').inner_text() == shown["gender"]

        # the canvas holds the photo at full size with face 1's box drawn in its colour (#2f9e44)
        x1 = round(api["faces"][0]["box"]["x1"])
        y_mid = round((api["faces"][0]["box"]["y1"] + api["faces"][0]["box"]["y2"]) / 2)
        size, pixel = page.evaluate(
            """([x, y]) => { const c = document.querySelector('.card[data-status="done"] canvas');
                return [[c.width, c.height], Array.from(c.getContext('2d').getImageData(x, y, 1, 1).data)]; }""",
            [x1, y_mid])
        assert size == [512, 512]
        assert abs(pixel[0] - 0x2F) <= 8 and abs(pixel[1] - 0x9E) <= 8 and abs(pixel[2] - 0x44) <= 8

        # the crop | saliency | reweighted triplet from /v1/explain
        page.wait_for_selector('.card[data-status="done"] .triplet img', timeout=180_000)
        page.wait_for_function("""() => { const i = document.querySelector('.card[data-status="done"] .triplet img');
                                         return i && i.complete && i.naturalWidth > 0; }""", timeout=30_000)
        width = page.evaluate("""() => document.querySelector('.card[data-status="done"] .triplet img').naturalWidth""")
        assert width == 3 * 128 + 2 * 4

        # download JSON gives exactly the API's answer
        with page.expect_download() as dl:
            card.locator(".download-json").click()
        assert dl.value.suggested_filename == "astronaut.json"
        assert json.loads(Path(dl.value.path()).read_text()) == api

        assert page.problems == []
        if os.environ.get("SALFACE_SCREENSHOT"):
            page.wait_for_timeout(300)
            out = ROOT / "docs" / "img" / "serve_page.png"
            out.parent.mkdir(parents=True, exist_ok=True)
            png = page.screenshot(full_page=True)
            # 256 colours keep the file about a third of the size, the photo dithered
            Image.open(io.BytesIO(png)).convert("RGB").quantize(
                256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG
            ).save(out, optimize=True)
