"""The drawing page in a real browser: Chromium driven by Playwright, against the Procfile's gunicorn.

Screenshots land in test-artifacts/page/ (ignored by git) for people to look at.
"""

import re

import playwright.sync_api as playwright_api
import pytest
import requests

from bench.service import PROJECT_ROOT, start_service
from model.decoding import encode_png
from tests.drawing import NOT_DIGIT_STROKES, STROKES, draw_digit, draw_number_picture, encode
from training.numbers import number_set

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.e2e]

ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "page"
# Where a digit's strokes go on the canvas, as shares of its size: a box like the one people draw in.
DIGIT_BOX = (0.3, 0.15, 0.4, 0.7)  # left, top, width, height
# Where a mark that is no digit goes in digit mode: a square, as such shapes are drawn.
SHAPE_BOX = (0.2, 0.2, 0.6, 0.6)
# A shape the digit detector should flag (tests.drawing.NOT_DIGIT_STROKES; see the non-digit tests).
NOT_A_DIGIT = "star"
# Pointer positions per stroke segment: enough for a smooth line.
STEPS_PER_SEGMENT = 6


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """The service as the Procfile starts it."""
    with start_service(tmp_path_factory.mktemp("gunicorn") / "output.log", {"WEB_CONCURRENCY": "2"}) as running:
        yield running


@pytest.fixture(scope="module")
def browser(chromium):
    """Headless Chromium (tests/conftest.py: skipped without one, failed under REQUIRE_BROWSER=1), screenshots' folder made."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return chromium


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


def stroke_points(stroke: list[tuple[float, float]], box: dict, region: tuple = DIGIT_BOX) -> list[tuple[float, float]]:
    """A stroke of tests.drawing.STROKES in page coordinates, inside a region of the canvas (shares of its size), densely sampled."""
    left, top, width, height = region
    corners = [
        (box["x"] + (left + x * width) * box["width"], box["y"] + (top + y * height) * box["height"]) for x, y in stroke
    ]
    points = [corners[0]]
    for (x0, y0), (x1, y1) in zip(corners, corners[1:], strict=False):
        points += [
            (x0 + (x1 - x0) * step / STEPS_PER_SEGMENT, y0 + (y1 - y0) * step / STEPS_PER_SEGMENT)
            for step in range(1, STEPS_PER_SEGMENT + 1)
        ]
    return points


def draw_with_mouse(page, strokes: list, region: tuple = DIGIT_BOX) -> None:
    """Draw strokes on the canvas with real mouse (pointer) events, one press per stroke."""
    box = page.get_by_test_id("digit-canvas").bounding_box()
    for stroke in strokes:
        points = stroke_points(stroke, box, region)
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


@pytest.mark.parametrize("mode", ["digit", "number"])
def test_a_phone_draws_with_touch_and_the_page_does_not_scroll(browser, service, mode):
    context = browser.new_context(
        viewport={"width": 375, "height": 667}, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    page.goto(service.url + "/")
    if mode == "number":
        page.get_by_test_id("mode-number").tap()
        playwright_api.expect(page.get_by_test_id("mode-number")).to_be_checked()
    canvas = page.get_by_test_id("digit-canvas")
    box = canvas.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 375  # the canvas fits the phone's width
    assert box["y"] + box["height"] <= 667  # ... and its height, with no scrolling
    marks, regions = (
        ([STROKES[3]], [DIGIT_BOX]) if mode == "digit" else ([STROKES[3], STROKES[7]], number_regions(page, 2))
    )
    touch = context.new_cdp_session(page)
    for strokes, region in zip(marks, regions, strict=False):
        for stroke in strokes:
            points = stroke_points(stroke, box, region)
            touch.send(
                "Input.dispatchTouchEvent",
                {"type": "touchStart", "touchPoints": [{"x": points[0][0], "y": points[0][1]}]},
            )
            for x, y in points[1:]:
                touch.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
            touch.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    if mode == "digit":
        expect_reading(page, 3)
    else:
        expect_number(page, "37", 2)
    assert page.evaluate("[window.scrollX, window.scrollY, window.visualViewport.scale]") == [0, 0, 1]
    page.screenshot(path=ARTIFACTS / f"phone-{mode}-{'3' if mode == 'digit' else '37'}.png", full_page=True)
    context.close()


def test_the_page_is_light(service):
    page = requests.get(service.url + "/", timeout=5)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert len(page.content) < 20_000  # one request, styles and script inline
    for name in (
        "digit-canvas",
        "clear",
        "undo",
        "upload",
        "prediction",
        "confidence",
        "probabilities",
        "model-input",
        "mode-digit",
        "mode-number",
        "number",
        "number-digits",
        "not-digit",
    ):
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


# --- Number mode: a wide canvas, /recognize/number.json, the number and a box over each digit read.


def number_regions(page, count: int) -> list[tuple]:
    """Regions (shares of the canvas) for `count` marks side by side: digits shaped as in digit mode, with a gap between."""
    box = page.get_by_test_id("digit-canvas").bounding_box()
    top, height = DIGIT_BOX[1], DIGIT_BOX[3]
    width = height * 4 / 7 * box["height"] / box["width"]  # a digit's shape as in digit mode
    gap = width * 0.6
    left = (1 - count * width - (count - 1) * gap) / 2
    return [(left + index * (width + gap), top, width, height) for index in range(count)]


def draw_number(page, marks: list[list]) -> list[tuple]:
    """Draw marks (each a list of strokes) side by side with the mouse; return their regions."""
    regions = number_regions(page, len(marks))
    for strokes, region in zip(marks, regions, strict=False):
        draw_with_mouse(page, strokes, region)
    return regions


def switch_to(page, mode: str) -> None:
    """Pick a mode from the switch with the mouse."""
    page.get_by_test_id(f"mode-{mode}").click()
    playwright_api.expect(page.get_by_test_id(f"mode-{mode}")).to_be_checked()


def digit_boxes(page) -> list[dict]:
    """Each drawn box over the canvas: its place on the page and its data."""
    return page.get_by_test_id("digit-box").evaluate_all(
        """boxes => boxes.map(box => ({...box.getBoundingClientRect().toJSON(), digit: box.dataset.digit,
                                        is_digit: box.dataset.isDigit, confidence: Number(box.dataset.confidence)}))"""
    )


def expect_number(page, number: str, marks: int) -> list[dict]:
    """The page shows this number and one box per mark; return the boxes, left to right."""
    expect = playwright_api.expect
    expect(page.get_by_test_id("number")).to_have_text(number, timeout=10_000)
    expect(page.get_by_test_id("digit-box")).to_have_count(marks)
    expect(page.get_by_test_id("number-digits").locator("li")).to_have_count(marks)
    expect(page.get_by_test_id("digit-boxes")).not_to_have_class("boxes stale")
    return digit_boxes(page)


def test_number_mode_reads_a_number_and_boxes_each_digit(page):
    expect = playwright_api.expect
    switch_to(page, "number")
    canvas = page.get_by_test_id("digit-canvas").bounding_box()
    assert canvas["width"] / canvas["height"] == pytest.approx(2.5, rel=0.02)  # wide enough for a number
    expect(page.get_by_test_id("message")).to_have_text("Nothing drawn yet")
    digits = [
        2,
        3,
        7,
        4,
    ]  # no 0: in a number, the detector takes STROKES[0]'s narrow oval for no digit (is_digit false)
    regions = draw_number(page, [STROKES[digit] for digit in digits])
    boxes = expect_number(page, "2374", len(digits))
    page.screenshot(path=ARTIFACTS / "desktop-number-2374.png")
    assert [box["digit"] for box in boxes] == [str(digit) for digit in digits]
    assert all(box["is_digit"] == "true" and 0.5 < box["confidence"] <= 1 for box in boxes)
    for box in boxes:  # over the canvas, inside its frame
        assert canvas["x"] <= box["left"] and box["right"] <= canvas["x"] + canvas["width"]
        assert canvas["y"] <= box["top"] and box["bottom"] <= canvas["y"] + canvas["height"]
    for left, right in zip(boxes, boxes[1:], strict=False):  # left to right, hardly overlapping
        assert left["left"] < right["left"]
        assert left["right"] - right["left"] < 0.1 * min(left["width"], right["width"])
    for box, (left, top, width, height) in zip(boxes, regions, strict=False):  # each box around the ink drawn there
        drawn_x, drawn_width = canvas["x"] + (left + width / 2) * canvas["width"], width * canvas["width"]
        assert abs((box["left"] + box["right"]) / 2 - drawn_x) < drawn_width / 2
        assert box["top"] < canvas["y"] + (top + 0.1 * height) * canvas["height"]
        assert box["bottom"] > canvas["y"] + (top + 0.9 * height) * canvas["height"]
    items = page.get_by_test_id("number-digits").locator("li")
    for index, digit in enumerate(digits):
        expect(items.nth(index)).to_have_attribute("data-digit", str(digit))
        expect(items.nth(index)).to_contain_text("%")
    # undo takes the last stroke: twice, and the 4 is gone; clear takes everything
    page.get_by_test_id("undo").click()
    page.get_by_test_id("undo").click()
    expect_number(page, "237", 3)
    page.get_by_test_id("clear").click()
    expect(page.get_by_test_id("message")).to_have_text("Nothing drawn yet")
    expect(page.get_by_test_id("number")).to_have_text("")
    expect(page.get_by_test_id("digit-box")).to_have_count(0)


def test_switching_modes_rereads_the_drawing(page):
    expect = playwright_api.expect
    switch_to(page, "number")
    draw_number(page, [STROKES[1], STROKES[7]])
    boxes = expect_number(page, "17", 2)
    assert [box["digit"] for box in boxes] == ["1", "7"]
    page.get_by_test_id("mode-digit").focus()  # the switch works from the keyboard too: arrows move between modes
    page.keyboard.press("ArrowRight")
    expect(page.get_by_test_id("mode-number")).to_be_checked()
    page.keyboard.press("ArrowLeft")
    expect(page.get_by_test_id("mode-digit")).to_be_checked()
    # digit mode reads the same drawing, shrunk into the square canvas, as one digit
    expect(page.get_by_test_id("prediction")).to_have_text(re.compile(r"^\d$"), timeout=10_000)
    expect(page.get_by_test_id("probabilities").locator("li.best")).to_have_count(1)
    expect(page.get_by_test_id("number")).to_be_hidden()
    expect(page.get_by_test_id("digit-box")).to_have_count(0)
    canvas = page.get_by_test_id("digit-canvas").bounding_box()
    assert canvas["width"] == pytest.approx(canvas["height"])
    page.screenshot(path=ARTIFACTS / "desktop-number-17-as-digit.png")
    switch_to(page, "number")  # and back: the same number
    expect_number(page, "17", 2)


def test_number_mode_shows_a_digit_read_in_its_line(page, mnist, tmp_path):
    """A 9 whose mark alone reads better as a 7, read as a 9 in its line "99" (the bench's fresh draw, number 765)."""
    expect = playwright_api.expect
    number = number_set(mnist["x_test"], mnist["y_test"], 766, seed=8)[765]
    path = tmp_path / "number.png"
    path.write_bytes(encode_png(number.picture))
    switch_to(page, "number")
    page.get_by_test_id("upload").set_input_files(str(path))
    boxes = expect_number(page, "99", 2)
    page.screenshot(path=ARTIFACTS / "desktop-number-read-in-line.png")
    assert [box["digit"] for box in boxes] == ["9", "9"]
    expect(page.get_by_test_id("digit-box").nth(0)).to_contain_text("%")
    expect(page.get_by_test_id("digit-box").nth(1)).to_have_text("9 · in its line")
    expect(page.get_by_test_id("number-digits").locator("li").nth(1)).to_contain_text(
        re.compile(r"read in its line \([\d.]+ % alone\)")
    )


def expect_detector(service) -> None:
    """The service runs with its digit detector and the splitter's wholeness network and line reader (model/digitness.keras,
    model/wholeness.keras, model/lines.keras): without them every picture counts as a digit, and numbers split worse."""
    log = service.log.read_text()
    assert "no digit detector" not in log and "no wholeness network" not in log and "no line reader" not in log


def draw_a_shape_between_1_and_7(page, shape: str) -> None:
    """In number mode: a 1, a shape of tests.drawing.NOT_DIGIT_STROKES (a square a digit wide) and a 7, side by side."""
    box = page.get_by_test_id("digit-canvas").bounding_box()
    regions = number_regions(page, 3)
    side = regions[1][2] * box["width"] / box["height"]  # the square's height, as a share of the canvas's
    middle = (regions[1][0], regions[1][1] + (regions[1][3] - side) / 2, regions[1][2], side)
    for strokes, region in zip(
        [STROKES[1], NOT_DIGIT_STROKES[shape], STROKES[7]], [regions[0], middle, regions[2]], strict=False
    ):
        draw_with_mouse(page, strokes, region)


def test_number_mode_leaves_out_a_mark_that_is_no_digit(page, service):
    expect_detector(service)
    expect = playwright_api.expect
    switch_to(page, "number")
    draw_a_shape_between_1_and_7(page, NOT_A_DIGIT)
    boxes = expect_number(page, "17", 3)
    page.screenshot(path=ARTIFACTS / f"desktop-number-with-{NOT_A_DIGIT}.png")
    assert [box["is_digit"] for box in boxes] == ["true", "false", "true"]
    expect(page.get_by_test_id("digit-box").nth(1)).to_have_text("?")
    expect(page.get_by_test_id("not-digit")).to_be_visible()


def test_digit_mode_says_when_a_drawing_is_no_digit(page, service):
    expect_detector(service)
    expect = playwright_api.expect
    draw_with_mouse(page, NOT_DIGIT_STROKES[NOT_A_DIGIT], SHAPE_BOX)
    expect(page.get_by_test_id("not-digit")).to_have_text(re.compile("That does not look like a digit"), timeout=10_000)
    expect(page.get_by_test_id("prediction")).to_have_class("unsure")  # the best guess stays, muted
    page.screenshot(path=ARTIFACTS / f"desktop-digit-{NOT_A_DIGIT}.png")
    page.get_by_test_id("clear").click()
    draw_with_mouse(page, STROKES[7])
    expect_reading(page, 7)
    expect(page.get_by_test_id("not-digit")).to_be_hidden()


def test_the_page_shows_what_the_api_says_of_marks_that_are_no_digits(page):
    """The page's side alone, whatever the detector of the day says: real answers, with one mark said to be no digit."""
    expect = playwright_api.expect

    def said_no_digit(route):
        answer = route.fetch().json()
        if (
            "digits" in answer
        ):  # /recognize/number.json: the mark in the middle third of the 700 pixels wide canvas is no digit
            for each in answer["digits"]:
                each["is_digit"] = not 700 / 3 < each["box"]["x"] + each["box"]["width"] / 2 < 700 * 2 / 3
            answer["number"] = answer["lines"][0] = "".join(
                str(each["digit"]) for each in answer["digits"] if each["is_digit"]
            )
        else:
            answer["is_digit"] = False
        route.fulfill(json=answer)

    page.route(lambda url: "/recognize" in url, said_no_digit)
    draw_with_mouse(page, NOT_DIGIT_STROKES["cross"], SHAPE_BOX)
    expect(page.get_by_test_id("not-digit")).to_have_text(re.compile("That does not look like a digit"), timeout=10_000)
    expect(page.get_by_test_id("prediction")).to_have_text(re.compile(r"^\d$"))
    expect(page.get_by_test_id("prediction")).to_have_class("unsure")
    page.get_by_test_id("clear").click()
    expect(page.get_by_test_id("not-digit")).to_be_hidden()
    switch_to(page, "number")
    draw_a_shape_between_1_and_7(page, NOT_A_DIGIT)
    boxes = expect_number(page, "17", 3)
    assert [box["is_digit"] for box in boxes] == ["true", "false", "true"]
    expect(page.get_by_test_id("digit-box").nth(1)).to_have_text("?")
    expect(page.get_by_test_id("digit-box").nth(0)).to_contain_text("1")
    expect(page.get_by_test_id("not-digit")).to_have_text("1 mark left out: not like any digit")
    expect(page.get_by_test_id("number-digits").locator("li").nth(1)).to_contain_text("not a digit")
    page.screenshot(path=ARTIFACTS / "desktop-number-said-no-digit.png")


def test_an_answer_that_comes_after_a_newer_one_is_ignored(page):
    held = []

    def hold_the_first(route):
        if held:
            route.continue_()
        else:
            held.append(route)

    page.route(lambda url: "/recognize" in url, hold_the_first)
    switch_to(page, "number")
    regions = number_regions(page, 2)
    draw_with_mouse(page, STROKES[1], regions[0])  # its answer ("1") is held back...
    draw_with_mouse(page, STROKES[7], regions[1])  # ... while this one's ("17") comes
    expect_number(page, "17", 2)
    assert len(held) == 1
    with page.expect_response(lambda response: "/recognize/number.json" in response.url):
        held[0].continue_()  # now the old answer comes, and is thrown away
    page.wait_for_timeout(300)
    expect_number(page, "17", 2)


def test_number_mode_reads_an_uploaded_picture_and_boxes_its_digits(page, tmp_path):
    switch_to(page, "number")
    picture, drawn = draw_number_picture("703", size=(1400, 400))  # 3.5:1, shown 1:2 across the canvas's 700 pixels
    path = tmp_path / "number.png"
    path.write_bytes(encode(picture))
    page.get_by_test_id("upload").set_input_files(str(path))
    boxes = expect_number(page, "703", 3)
    page.screenshot(path=ARTIFACTS / "desktop-number-upload.png")
    # where each drawn digit lies on the page: the picture fills the canvas's width, centred in its height
    canvas = page.get_by_test_id("digit-canvas").evaluate(
        "canvas => { const box = canvas.getBoundingClientRect(); return {x: box.left + canvas.clientLeft, y: box.top + canvas.clientTop, "
        "width: canvas.clientWidth, height: canvas.clientHeight}; }"
    )
    scale = canvas["width"] / 1400
    top = canvas["y"] + (canvas["height"] - 400 * scale) / 2
    for box, (left, upper, width, height) in zip(boxes, drawn, strict=False):
        assert abs((box["left"] + box["right"]) / 2 - (canvas["x"] + (left + width / 2) * scale)) < width * scale / 2
        assert abs((box["top"] + box["bottom"]) / 2 - (top + (upper + height / 2) * scale)) < height * scale / 4
    switch_to(page, "digit")  # the same file, read as one digit
    playwright_api.expect(page.get_by_test_id("prediction")).to_have_text(re.compile(r"^\d$"), timeout=10_000)
    page.get_by_test_id("undo").click()  # the picture goes
    playwright_api.expect(page.get_by_test_id("message")).to_have_text("Nothing drawn yet")


def test_the_idle_hint_is_in_the_texts_colour_and_errors_in_the_error_colour(page, tmp_path):
    expect = playwright_api.expect
    message = page.get_by_test_id("message")

    def colour() -> str:
        return message.evaluate("element => getComputedStyle(element).color")

    text_colour = page.evaluate("() => getComputedStyle(document.body).color")
    error_colour = page.evaluate(
        "() => { const probe = document.createElement('span'); probe.style.color = 'var(--error)'; "
        "document.body.append(probe); const colour = getComputedStyle(probe).color; probe.remove(); return colour; }"
    )
    assert error_colour != text_colour
    expect(message).to_have_text("Nothing drawn yet")  # what a newcomer sees first: a hint, not an error
    expect(message).to_be_visible()
    assert colour() == text_colour
    page.screenshot(path=ARTIFACTS / "desktop-idle.png")
    notes = tmp_path / "notes.png"
    notes.write_text("shopping list: milk, eggs")
    page.get_by_test_id("upload").set_input_files(str(notes))
    expect(message).to_have_text("That file is not an image", timeout=10_000)
    assert colour() == error_colour
    page.get_by_test_id("clear").click()  # idle again: the hint, in the text's colour again
    expect(message).to_have_text("Nothing drawn yet")
    assert colour() == text_colour
