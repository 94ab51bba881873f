"""The line reader: CTC's probability of a spelling, the search's best groupings, and the line reader's say among them."""

import itertools

import numpy as np
import pytest

from model import number_reader
from model.classifier import number_text
from model.decoding import encode_png
from model.number_reader import (
    LINE_PICTURE_SHAPE,
    GroupReading,
    Page,
    Piece,
    Segmenter,
    ctc_log_probability,
    segment_number,
)
from tests.drawing import draw_number
from training.line_reader import best_path_text, encode_texts, line_examples
from training.numbers import number_set


def spelled_by_brute_force(log_probabilities: np.ndarray) -> dict[str, float]:
    """Every path through the columns, collapsed CTC's way (repeats merged, class 0 dropped): each spelling's probability."""
    spellings: dict[str, float] = {}
    for path in itertools.product(range(log_probabilities.shape[1]), repeat=len(log_probabilities)):
        merged = [cls for index, cls in enumerate(path) if cls != 0 and (index == 0 or cls != path[index - 1])]
        text = "".join(str(cls - 1) for cls in merged)
        probability = float(np.exp(sum(log_probabilities[step, cls] for step, cls in enumerate(path))))
        spellings[text] = spellings.get(text, 0.0) + probability
    return spellings


def test_the_probability_of_a_spelling_sums_every_path_that_spells_it():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 11)) * 2
    log_probabilities = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
    spellings = spelled_by_brute_force(log_probabilities)
    assert sum(spellings.values()) == pytest.approx(1.0)
    for text in ("", "3", "33", "31", "313", "3333", "12345"):
        expected = spellings.get(text, 0.0)
        got = np.exp(ctc_log_probability(log_probabilities, [int(character) for character in text]))
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-15), text


def test_the_best_path_merges_repeats_and_drops_no_new_digit():
    columns = [0, 2, 2, 0, 2, 8, 8, 0, 0, 1]
    assert best_path_text(np.eye(11)[columns]) == "1170"
    np.testing.assert_array_equal(encode_texts(["12", "907"]), [[2, 3, 0], [10, 1, 8]])


def drawn_page(text: str) -> Page:
    """The page of a number drawn in pen, its digits close together."""
    picture, _ = draw_number(text, gaps=[4] * (len(text) - 1))
    return Page(np.asarray(picture.convert("L"), dtype=np.float32) / 255.0)


def test_the_searchs_best_groupings_come_best_first_and_each_uses_every_piece_once(classifier):
    page = drawn_page("4719")
    segmenter = Segmenter(page, classifier.read_scores)
    ((labels, height),) = number_reader.writing_lines(page)
    line = segmenter.line(labels, height)
    pieces = segmenter.split_wide(labels, line)
    groupings = segmenter.groupings(pieces, line)
    assert 2 <= len(groupings) <= number_reader.KEPT_GROUPINGS
    scores = [score for score, _ in groupings]
    assert scores == sorted(scores, reverse=True)
    for _, groups in groupings:
        used = [piece for group in groups for piece in group]
        assert len(used) == len(pieces) and set(used) == set(pieces)
    assert len({tuple(groups) for _, groups in groupings}) == len(groupings)
    best = groupings[0][1]
    assert segmenter.group_line(pieces, line) == (
        best,
        [int(np.argmax(segmenter.cache[group].probabilities)) for group in best],
        None,
    )


def sure_of(digits: list[int], sure: float = 0.99) -> np.ndarray:
    """A line reader's columns (steps, 11) `sure` of spelling `digits`: each in its own column, "no new digit" between."""
    columns = [0]
    for digit in digits:
        columns += [digit + 1, 0]
    return np.log(np.where(np.eye(11)[columns] > 0, sure, (1 - sure) / 10))


def test_the_line_reader_has_the_last_word_among_the_searchs_best_groupings(classifier):
    page = drawn_page("4719")
    ((labels, height),) = number_reader.writing_lines(page)
    plain = Segmenter(page, classifier.read_scores)
    line = plain.line(labels, height)
    pieces = plain.split_wide(labels, line)
    groupings = plain.groupings(pieces, line)
    spellings = [[int(np.argmax(plain.cache[group].probabilities)) for group in groups] for _, groups in groupings]
    other = next(index for index, spelling in enumerate(spellings) if spelling != spellings[0])
    sure = sure_of(spellings[other], 0.999)  # a line reader sure of the other grouping's digits
    pictures = []
    guided = Segmenter(page, classifier.read_scores, read_line=lambda picture: pictures.append(picture) or sure)
    groups, digits, line_probability = guided.group_line(guided.split_wide(labels, line), line)
    assert groups == groupings[other][1] and digits == spellings[other] and line_probability > 0.5
    assert len(pictures) == 1 and pictures[0].shape == LINE_PICTURE_SHAPE


def test_a_cut_pieces_parts_join_again_as_the_piece_and_each_pays_half_the_cut_apart(classifier):
    picture, _ = draw_number("00", gaps=[-12])
    page = Page(np.asarray(picture.convert("L"), dtype=np.float32) / 255.0)
    segmenter = Segmenter(page, classifier.read_scores, classifier._judge)
    ((labels, height),) = number_reader.writing_lines(page)
    line = segmenter.line(labels, height)
    assert len(labels) == 1  # the two 0s touch: one stroke
    stroke = Piece(labels[0])
    ((whole, _),) = segmenter.groupings([stroke], line)
    offered, cut_parts = segmenter.offer_cuts([stroke], line)
    first, second = offered
    crossing = cut_parts[first][1]
    assert cut_parts == {first: (second, crossing), second: (first, crossing)} and crossing > 0
    scores = {frozenset(groups): score for score, groups in segmenter.groupings(offered, line, cut_parts)}
    # joined again, the parts are the stroke: its pixels, its reading, no gap paid
    assert scores[frozenset({(first, second)})] == pytest.approx(whole, abs=1e-6)
    # apart, the two digits pay the cut's cost between them
    apart = scores[frozenset({(first,), (second,)})]
    assert apart == pytest.approx(
        segmenter.score(first, line) + segmenter.score(second, line) - number_reader.CUT_COST * crossing
    )


@pytest.fixture(scope="module")
def fresh_draw(mnist):
    """The bench's fresh draw of numbers (seed 8) composed from the MNIST test digits, its first 830."""
    return number_set(mnist["x_test"], mnist["y_test"], 830, seed=8)


@pytest.mark.parametrize("index, text, without", [(82, "0726", "0426"), (829, "337211", "33728")])
def test_a_line_the_line_reader_finds_unlikely_is_searched_again_with_its_pieces_offered_cut(
    classifier, fresh_draw, monkeypatch, index, text, without
):
    # numbers of the fresh draw that the first search reads wrong (with the committed networks: a 7 read as a 4;
    # two 1s close together, one stroke read as an 8): the line reader gives that reading less than
    # 1 %, and the second search, its pieces offered cut, reads the number right
    number = fresh_draw[index]
    picture = number.picture.astype(np.float32) / 255.0

    def digits_and_line_probability() -> tuple[str, float]:
        readings = segment_number(
            picture, classifier.read_scores, judge=classifier._judge, read_line=classifier._read_line
        )
        return "".join(str(reading.digit) for reading in readings), readings[0].line_probability

    digits, line_probability = digits_and_line_probability()
    assert number.number == text and digits == text and line_probability > 0.5
    monkeypatch.setattr(number_reader, "RECHECK_PROBABILITY", 0.0)
    digits, line_probability = digits_and_line_probability()
    assert digits == without and line_probability < 0.01


def test_a_second_search_that_finds_no_grouping_leaves_the_first_ones_reading(classifier, fresh_draw, monkeypatch):
    number = fresh_draw[829]
    first_search = Segmenter.groupings
    monkeypatch.setattr(
        Segmenter,
        "groupings",
        lambda self, pieces, line, cut_parts=None: [] if cut_parts else first_search(self, pieces, line),
    )
    readings = segment_number(
        number.picture.astype(np.float32) / 255.0,
        classifier.read_scores,
        judge=classifier._judge,
        read_line=classifier._read_line,
    )
    assert "".join(str(reading.digit) for reading in readings) == "33728"


@pytest.mark.parametrize(
    "own, seven, expected",
    [
        (
            "4119",
            {7: 0.6, 1: 0.3},
            [4, 1, 1, 9],
        ),  # the 1 costs log 2, less than the line reader's e times: read in its line
        ("4119", {7: 0.9, 1: 0.05}, [4, 7, 1, 9]),  # the 1 costs log 18: the mark's own best stays
        ("4118", {7: 0.6, 1: 0.3}, [4, 7, 1, 9]),  # two digits differ (the 9 as unsure of an 8): neither is swapped
        ("411", {7: 0.6, 1: 0.3}, [4, 7, 1, 9]),  # a digit fewer
    ],
)
def test_a_digit_is_read_in_its_line_only_where_the_line_reader_differs_in_it_alone_and_that_pays(own, seven, expected):
    segmenter = Segmenter(drawn_page("1"), read=None)
    groups = [(Piece(label),) for label in range(4)]
    for group, digit, alternatives in zip(
        groups, [4, 7, 1, 9], [{4: 0.97}, seven, {1: 0.97}, {9: 0.6, 8: 0.3}], strict=False
    ):
        probabilities = np.full(10, (1 - sum(alternatives.values())) / (10 - len(alternatives)))
        probabilities[list(alternatives)] = list(alternatives.values())
        assert int(np.argmax(probabilities)) == digit
        segmenter.cache[group] = GroupReading(0.0, None, probabilities, 1.0)
    own_digits = [int(digit) for digit in own]
    log_probabilities = sure_of(own_digits)
    own_spelled = ctc_log_probability(log_probabilities, own_digits)
    spelled = own_spelled - 1.0  # the line reader finds the chosen digits e times less likely than its own reading
    digits, probability = segmenter.read_in_line(groups, [4, 7, 1, 9], spelled, log_probabilities)
    assert digits == expected
    assert probability == (own_spelled if expected != [4, 7, 1, 9] else spelled)


@pytest.mark.parametrize("index, text, without", [(233, "89335", "89235"), (765, "99", "97")])
def test_a_digit_the_line_reader_reads_otherwise_is_read_in_its_line_where_it_doubts_the_reading(
    classifier, fresh_draw, monkeypatch, index, text, without
):
    # a 3 whose mark alone reads better as a 2, a 9 as a 7: the line reader gives those readings less than 1 % and
    # reads them right
    number = fresh_draw[index]
    digits = classifier.read_number(encode_png(number.picture))
    assert number.number == text and number_text(digits) == text
    (position,) = [position for position, item in enumerate(digits) if item.read_in_line]
    prediction = digits[position].prediction
    assert prediction.digit == int(text[position]) and int(np.argmax(prediction.probabilities)) == int(
        without[position]
    )
    # its confidence is the mark's own probability of the digit read: low, as the mark alone reads otherwise
    assert prediction.confidence == prediction.probabilities[prediction.digit] < 0.5
    monkeypatch.setattr(
        Segmenter, "read_in_line", lambda self, groups, digits, spelled, log_probabilities: (digits, spelled)
    )
    assert number_text(classifier.read_number(encode_png(number.picture))) == without


def test_a_line_picture_holds_the_lines_strokes_scaled_to_fit_from_its_left():
    page = drawn_page("508")
    ((labels, _),) = number_reader.writing_lines(page)
    picture = page.line_picture(labels)
    assert picture.shape == LINE_PICTURE_SHAPE and picture.dtype == np.float32
    assert 0.0 <= picture.min() and picture.max() <= 1.0
    inked_rows, inked_columns = np.flatnonzero(picture.max(axis=1) > 0.5), np.flatnonzero(picture.max(axis=0) > 0.5)
    # a short line is scaled to the picture's height less 2 pixels each side, its width in proportion, from the left
    top, left, bottom, right = page.extent([number_reader.Piece(label) for label in labels])
    scaled_width = (LINE_PICTURE_SHAPE[0] - 4) * (right - left) / (bottom - top)
    assert inked_rows[0] <= 4 and inked_rows[-1] >= LINE_PICTURE_SHAPE[0] - 5
    assert inked_columns[0] <= 4 and abs(inked_columns[-1] - (2 + scaled_width)) <= 3
    assert not picture[:, round(scaled_width) + 6 :].any()


def test_the_training_lines_are_cut_as_the_splitter_cuts_them(mnist):
    images, labels = mnist["x_train"][:300], mnist["y_train"][:300]
    pictures, texts = line_examples(images, labels, 20, seed=3)
    numbers = number_set(images, labels, 20, seed=3)
    assert texts == [text for number in numbers for text in number.lines][: len(texts)] and len(texts) >= 20
    assert pictures.shape == (len(texts), *LINE_PICTURE_SHAPE) and pictures.dtype == np.uint8
    first = Page(numbers[0].picture.astype(np.float32) / 255.0)
    (first_labels, _), *_ = number_reader.writing_lines(first)
    np.testing.assert_array_equal(pictures[0], np.round(255 * first.line_picture(first_labels)).astype(np.uint8))


def test_the_committed_line_reader_reads_most_lines_of_test_digits_alone(classifier, mnist):
    numbers = number_set(mnist["x_test"], mnist["y_test"], 60, seed=11)
    right = total = 0
    for number in numbers:
        page = Page(number.picture.astype(np.float32) / 255.0)
        lines = number_reader.writing_lines(page)
        if len(lines) != len(number.lines):
            continue
        for (labels, _), text in zip(lines, number.lines, strict=False):
            total += 1
            right += best_path_text(classifier._read_line(page.line_picture(labels))) == text
    assert total >= 60 and right / total >= 0.85


@pytest.mark.needs_tensorflow
def test_both_runtimes_agree_on_the_line_reader(keras_classifier, classifier):
    page = drawn_page("3141")
    ((labels, _),) = number_reader.writing_lines(page)
    picture = page.line_picture(labels)
    np.testing.assert_allclose(keras_classifier._read_line(picture), classifier._read_line(picture), atol=1e-4)


def test_numbers_are_read_with_the_line_reader_when_it_is_there(classifier, monkeypatch):
    picture, _ = draw_number("2024")
    calls = []
    read_line = classifier._read_line
    monkeypatch.setattr(classifier, "_read_line", lambda line: calls.append(line) or read_line(line))
    offered = []
    monkeypatch.setattr(Segmenter, "offer_cuts", lambda self, pieces, line: offered.append(pieces) or (pieces, {}))
    digits = classifier.read_number(encode_png(np.asarray(picture.convert("L"))))
    # read once, and sure enough of the digits that the line is not searched again
    assert "".join(str(item.prediction.digit) for item in digits) == "2024" and len(calls) == 1 and not offered
    assert not any(item.read_in_line for item in digits)
    readings = number_reader.read_number(
        encode_png(np.asarray(picture.convert("L"))),
        classifier.read_scores,
        judge=classifier._judge,
        read_line=read_line,
    )
    # one line: every digit carries the line reader's probability of its digits
    assert len({reading.line_probability for reading in readings}) == 1 and 0.5 < readings[0].line_probability <= 1.0
