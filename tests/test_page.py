"""The drawing page in a real browser: Debian's Chromium driven by Playwright, against the Procfile's gunicorn.

Screenshots land in test-artifacts/page/ (ignored by git) for people to look at.
"""

import shutil

import playwright.sync_api as playwright_api
import pytest
import requests

from bench.service import PROJECT_ROOT, start_service
from tests.drawing import STROKES, draw_digit, encode

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "page"
# Where a digit's strokes go on the canvas, as shares of its size: a box like the one people draw in.
DIGIT_BOX = (0.3, 0.15, 0.4, 0.7)  # left, top, width, height
# Pointer positions per stroke segment: enough for a smooth line.
STEPS_PER_SEGMENT = 6


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """The service as the Procfile starts it."""
    with start_service(tmp_path_factory.mktemp("gunicorn") / "output.log", {"WEB_CONCURRENCY": "2"}) as running:
        yield running


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium (Playwright downloads no browser here)."""
    if CHROMIUM is None:
        pytest.fail("Chromium is not installed: apt-get install chromium (.ci/run does)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser, service):
    """A desktop-sized page of the service; fails the test if the page asks anything of another host."""
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    opened = context.new_page()
    elsewhere: list[str] = []
    opened.on("request", lambda request: None if request.url.startswith(service.url) else elsewhere.append(request.url))
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.goto(service.url + "/")
    yield opened
    context.close()
    assert elsewhere == [] and errors == []


def stroke_points(stroke: list[tuple[float, float]], box: dict) -> list[tuple[float, float]]:
    """A stroke of tests.drawing.STROKES in page coordinates, inside the canvas's digit box, densely sampled."""
    left, top, width, height = DIGIT_BOX
    corners = [(box["x"] + (left + x * width) * box["width"], box["y"] + (top + y * height) * box["height"]) for x, y in stroke]
    points = [corners[0]]
    for (x0, y0), (x1, y1) in zip(corners, corners[1:]):
        points += [(x0 + (x1 - x0) * step / STEPS_PER_SEGMENT, y0 + (y1 - y0) * step / STEPS_PER_SEGMENT) for step in range(1, STEPS_PER_SEGMENT + 1)]
    return points


def draw_with_mouse(page, strokes: list) -> None:
    """Draw strokes on the canvas with real mouse (pointer) events, one press per stroke."""
    box = page.get_by_test_id("digit-canvas").bounding_box()
    for stroke in strokes:
        points = stroke_points(stroke, box)
        page.mouse.move(*points[0])
        page.mouse.down()
        for point in points[1:]:
            page.mouse.move(*point)
        page.mouse.up()


def expect_reading(page, digit: int) -> None:
    """The page shows this digit, its confidence, ten bars and the model's-eye view."""
    expect = playwright_api.expect
    expect(page.get_by_test_id("prediction")).to_have_text(str(digit), timeout=10_000)
    expect(page.get_by_test_id("confidence")).to_contain_text("% sure")
    expect(page.get_by_test_id("probabilities").locator("li")).to_have_count(10)
    expect(page.get_by_test_id("probabilities").locator("li.best")).to_have_attribute("data-digit", str(digit))
    expect(page.get_by_test_id("model-input")).to_be_visible()
    assert page.get_by_test_id("model-input").evaluate("image => image.naturalWidth") == 28


@pytest.mark.parametrize("digit", [0, 1, 2, 3, 4, 5, 7, 8])
def test_drawing_a_digit_shows_its_reading(page, digit):
    draw_with_mouse(page, STROKES[digit])  # 3, 4 and 8 are drawn in two strokes
    expect_reading(page, digit)
    page.screenshot(path=ARTIFACTS / f"desktop-digit-{digit}.png")


def test_clear_and_undo(page):
    expect = playwright_api.expect
    expect(page.get_by_test_id("message")).to_have_text("Nothing drawn yet")
    upright, angle = STROKES[4][1], STROKES[4][0]
    draw_with_mouse(page, [upright])  # alone, a 1
    expect_reading(page, 1)
    draw_with_mouse(page, [angle])  # with the angle, a 4
    expect_reading(page, 4)
    page.get_by_test_id("undo").click()  # the angle goes: a 1 again
    expect_reading(page, 1)
    page.get_by_test_id("clear").click()
    expect(page.get_by_test_id("message")).to_have_text("Nothing drawn yet")
    expect(page.get_by_test_id("prediction")).to_have_text("")
    assert page.get_by_test_id("digit-canvas").evaluate(
        "canvas => canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data.every(value => value === 0)"
    )


def test_buttons_work_from_the_keyboard(page):
    expect = playwright_api.expect
    draw_with_mouse(page, STROKES[1])
    expect_reading(page, 1)
    page.get_by_test_id("undo").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("message")).to_have_text("Nothing drawn yet")
    draw_with_mouse(page, STROKES[4])
    expect_reading(page, 4)
    page.get_by_test_id("clear").focus()
    page.keyboard.press("Space")
    expect(page.get_by_test_id("message")).to_have_text("Nothing drawn yet")


def test_uploading_a_picture_and_a_file_that_is_not_one(page, tmp_path):
    expect = playwright_api.expect
    photo = tmp_path / "six.png"
    photo.write_bytes(encode(draw_digit(6, size=(600, 600))))
    page.get_by_test_id("upload").set_input_files(str(photo))
    expect_reading(page, 6)
    page.screenshot(path=ARTIFACTS / "desktop-upload.png")
    notes = tmp_path / "notes.png"
    notes.write_text("shopping list: milk, eggs")
    page.get_by_test_id("upload").set_input_files(str(notes))
    expect(page.get_by_test_id("message")).to_have_text("That file is not an image", timeout=10_000)
    expect(page.get_by_test_id("prediction")).to_have_text("")
    page.screenshot(path=ARTIFACTS / "desktop-not-an-image.png")


def test_a_phone_draws_with_touch_and_the_page_does_not_scroll(browser, service):
    context = browser.new_context(viewport={"width": 375, "height": 667}, device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(service.url + "/")
    canvas = page.get_by_test_id("digit-canvas")
    box = canvas.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 375  # the canvas fits the phone's width
    touch = context.new_cdp_session(page)
    for stroke in STROKES[3]:
        points = stroke_points(stroke, box)
        touch.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": points[0][0], "y": points[0][1]}]})
        for x, y in points[1:]:
            touch.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
        touch.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    expect_reading(page, 3)
    assert page.evaluate("[window.scrollX, window.scrollY, window.visualViewport.scale]") == [0, 0, 1]
    page.screenshot(path=ARTIFACTS / "phone-digit-3.png", full_page=True)
    context.close()


def test_the_page_is_light(service):
    page = requests.get(service.url + "/", timeout=5)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert len(page.content) < 20_000  # one request, styles and script inline
    for name in ("digit-canvas", "clear", "undo", "upload", "prediction", "confidence", "probabilities", "model-input"):
        assert f'data-testid="{name}"' in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing from elsewhere



def test_dropping_a_picture_on_the_page(page):
    picture = encode(draw_digit(2, size=(400, 400), background=None))
    transfer = page.evaluate_handle(
        """bytes => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([new Uint8Array(bytes)], "two.png", {type: "image/png"}));
            return transfer;
        }""",
        list(picture),
    )
    page.dispatch_event("body", "drop", {"dataTransfer": transfer})
    expect_reading(page, 2)
    page.screenshot(path=ARTIFACTS / "desktop-drop.png")
