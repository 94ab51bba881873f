"""Other people's handwriting through the API: real digits by writers MNIST never had, posted as people upload them.

    python -m bench.writers --usps ../shared/data/usps_dev.npz [--mnist ../shared/data/mnist.npz] [--seed 0]
        [--url http://127.0.0.1:5000] [--limit N]

The sets (none of them ever trained on):
- **usps**: the real USPS zip-code digits of `--usps` (16x16 grey, other writers, US mail);
- **usps box-filling**: the same digits cut to 1 bit and stretched to fill their 16x16 box, the way the Semeion
  (Italian writers) scans were made: wide 1s, squat 0s;
- **forms 8x8**: scikit-learn's `load_digits()` (8x8 counts of 0..16 from forms by 43 writers);
- **photos**: the USPS digits written into photos and scans (`bench.scenes`' paper scenes, plus a sheet of paper lying
  on a dark table that fills one side of the frame; the first `--photos` digits).
The pixel sets are each rendered four ways, as people upload such pictures: dark ink on white paper and a
transparent canvas export, each upscaled about 10x smoothly (bicubic) and with hard pixel edges (nearest), with a
margin of paper. Every picture is posted to `/recognize.json` (in batches of `{"images": [...]}`), by the Flask app
in this process, or to `--url`. Per set and rendering the bench prints how many were read right, how many were
answered `is_digit: false`, how many were refused, the class read worst (and the rest without it), and the most
common confusions. With `--mnist`, MNIST's 10,000
test digits go the same way (as the PNG files they are).
"""

import argparse
import base64
import io
import logging
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from bench import scenes
from model.limits import DEFAULT_MAX_REQUEST_PIXELS
from web.settings import DEFAULT_MAX_UPLOAD_BYTES

logger = logging.getLogger("bench.writers")

DEFAULT_SEED = 0
DEFAULT_PHOTOS = 300
# Posted per request: the service's default MAX_BATCH_IMAGES.
BATCH_IMAGES = 64
# Base64 bytes per request: well inside the service's default MAX_UPLOAD_BYTES.
BATCH_BYTES = DEFAULT_MAX_UPLOAD_BYTES // 2
# A digit's source pixels become this many output pixels, give or take (people upload ~10x scans and canvases).
UPSCALE = (8, 13)
# Paper left round the digit, in source pixels.
MARGIN = (1, 4)
# Dark ink and light paper levels (0..255) of a paper rendering.
INK_LEVEL = (10, 60)
PAPER_LEVEL = (225, 255)
# 1-bit cut and box-filling of the Semeion-style set.
BINARY_LEVEL = 0.5
# Photo scenes of bench.scenes a real digit is written into.
PHOTO_SCENES = ("sticky_note_photo", "ballpoint_highres", "colored_paper", "small_digit_in_scan")
# A sheet of paper on a table: the frame, the table's share of it, and its levels.
TABLE_FRAME = (960, 1280)  # height, width
TABLE_SHARE = (0.12, 0.3)
TABLE_LEVEL = (40, 110)
CONFUSIONS_SHOWN = 6
FLAG_LABEL = "flagged"


@dataclass
class Tally:
    """One row: how a set in one rendering was answered."""

    name: str
    total: int = 0
    correct: int = 0
    flagged: int = 0
    refused: Counter = field(default_factory=Counter)
    confusions: Counter = field(default_factory=Counter)
    per_class: Counter = field(default_factory=Counter)  # digits of each true class
    right_per_class: Counter = field(default_factory=Counter)

    def add(self, label: int, answer: dict) -> None:
        """Count one answer of the service for a digit whose true value is `label`."""
        self.total += 1
        self.per_class[label] += 1
        if "error" in answer:
            self.refused[answer["error"]["code"]] += 1
            return
        if answer["digit"] == label:
            self.correct += 1
            self.right_per_class[label] += 1
        else:
            self.confusions[(label, answer["digit"])] += 1
        if not answer["is_digit"]:
            self.flagged += 1

    def row(self) -> str:
        """The printed line."""
        refused = sum(self.refused.values())
        pairs = ", ".join(
            f"{true}->{read} x{count}" for (true, read), count in self.confusions.most_common(CONFUSIONS_SHOWN)
        )
        codes = " ".join(f"{code}={count}" for code, count in self.refused.items())
        weakest = min(self.per_class, key=lambda label: self.right_per_class[label] / self.per_class[label])
        others = self.total - self.per_class[weakest]
        return (
            f"{self.name:<36} {self.total:>6} {percent(self.correct, self.total):>8} {percent(self.flagged, self.total):>8} "
            f"{percent(refused, self.total):>8}  weakest {weakest}: {percent(self.right_per_class[weakest], self.per_class[weakest])}, "
            f"others {percent(self.correct - self.right_per_class[weakest], others)}  {codes or '-'}  {pairs or '-'}"
        )


def percent(part: int, whole: int) -> str:
    """A share as a percentage with two decimals."""
    return f"{100.0 * part / whole:.2f}%" if whole else "-"


def png(pixels: np.ndarray, mode: str) -> bytes:
    """PNG file bytes of a uint8 array."""
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode).save(buffer, format="PNG")
    return buffer.getvalue()


def upscaled(ink: np.ndarray, rng: np.random.Generator, hard: bool) -> np.ndarray:
    """Ink coverage 0..1 (H, W) upscaled ~10x (nearest when `hard`, else bicubic), with a random margin of paper."""
    factor = int(rng.integers(UPSCALE[0], UPSCALE[1] + 1))
    margin = int(rng.integers(MARGIN[0], MARGIN[1] + 1))
    padded = np.pad(ink, margin)
    size = (padded.shape[1] * factor, padded.shape[0] * factor)
    picture = Image.fromarray(padded.astype(np.float32), "F").resize(size, Image.NEAREST if hard else Image.BICUBIC)
    return np.clip(np.asarray(picture), 0.0, 1.0)


def paper_render(ink: np.ndarray, rng: np.random.Generator, hard: bool) -> bytes:
    """Dark ink on white paper, as a scan: 8-bit grey PNG."""
    coverage = upscaled(ink, rng, hard)
    ink_level, paper_level = rng.uniform(*INK_LEVEL), rng.uniform(*PAPER_LEVEL)
    return png(np.round(paper_level + (ink_level - paper_level) * coverage).astype(np.uint8), "L")


def canvas_render(ink: np.ndarray, rng: np.random.Generator, hard: bool) -> bytes:
    """A transparent canvas export: black strokes whose alpha is the ink, RGBA PNG."""
    coverage = upscaled(ink, rng, hard)
    pixels = np.zeros(coverage.shape + (4,), dtype=np.uint8)
    pixels[..., 3] = np.round(coverage * 255.0).astype(np.uint8)
    return png(pixels, "RGBA")


RENDERINGS: dict[str, Callable[[np.ndarray, np.random.Generator], bytes]] = {
    "paper, smooth": lambda ink, rng: paper_render(ink, rng, hard=False),
    "paper, hard pixels": lambda ink, rng: paper_render(ink, rng, hard=True),
    "canvas, smooth": lambda ink, rng: canvas_render(ink, rng, hard=False),
    "canvas, hard pixels": lambda ink, rng: canvas_render(ink, rng, hard=True),
}


def box_filling(ink: np.ndarray) -> np.ndarray:
    """A digit cut to 1 bit and stretched to fill its whole box, as the Semeion scans were made."""
    binary = ink >= BINARY_LEVEL
    rows, cols = np.flatnonzero(binary.any(axis=1)), np.flatnonzero(binary.any(axis=0))
    crop = binary[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].astype(np.float32)
    stretched = np.asarray(Image.fromarray(crop, "F").resize(ink.shape[::-1], Image.NEAREST))
    return (stretched >= 0.5).astype(np.float32)


def as_mnist_digit(ink: np.ndarray) -> np.ndarray:
    """Ink 0..1 of any size as the 28x28 uint8 white-on-black digit bench.scenes draws from (fitted into 20x20)."""
    rows, cols = np.flatnonzero(ink.max(axis=1) > 0.05), np.flatnonzero(ink.max(axis=0) > 0.05)
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    scale = 20.0 / max(crop.shape)
    width, height = max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))
    fitted = np.clip(
        np.asarray(Image.fromarray(crop.astype(np.float32), "F").resize((width, height), Image.BICUBIC)), 0, 1
    )
    digit = np.zeros((28, 28), dtype=np.uint8)
    top, left = (28 - height) // 2, (28 - width) // 2
    digit[top : top + height, left : left + width] = np.round(fitted * 255.0).astype(np.uint8)
    return digit


def paper_on_table(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A phone photo of a sheet with a pen digit, lying on a dark table that fills one side of the frame, JPEG."""
    height, width = TABLE_FRAME
    frame = np.full((height, width), rng.uniform(200, 240), dtype=np.float32)
    side, share = int(rng.integers(4)), rng.uniform(*TABLE_SHARE)
    table = np.zeros((height, width), dtype=bool)
    band = round(share * (height if side < 2 else width))
    table[
        [slice(0, band), slice(height - band, height), slice(None), slice(None)][side],
        [slice(None), slice(None), slice(0, band), slice(width - band, width)][side],
    ] = True
    frame[table] = rng.uniform(*TABLE_LEVEL)
    frame += 12.0 * scenes.smooth_noise(height, width, rng, cells=5)
    digit_height = rng.uniform(0.18, 0.35) * height
    alpha = scenes.pen_alpha(digit, digit_height, rng.uniform(0.05, 0.1) * digit_height, max_width=0.4 * width)
    free = ~table
    rows, cols = np.flatnonzero(free.any(axis=1)), np.flatnonzero(free.any(axis=0))
    top = int(rng.integers(rows[0] + 20, max(rows[0] + 21, rows[-1] - alpha.shape[0] - 20)))
    left = int(rng.integers(cols[0] + 20, max(cols[0] + 21, cols[-1] - alpha.shape[1] - 20)))
    region = frame[top : top + alpha.shape[0], left : left + alpha.shape[1]]
    region += (rng.uniform(20, 60) - region) * alpha[: region.shape[0], : region.shape[1]]
    frame += rng.standard_normal(frame.shape, dtype=np.float32) * np.float32(rng.uniform(2, 6))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(np.round(frame), 0, 255).astype(np.uint8), "L").convert("RGB").save(
        buffer, "JPEG", quality=85
    )
    return buffer.getvalue()


def photo_renderings() -> dict[str, Callable[[np.ndarray, np.random.Generator], bytes]]:
    """Photo scenes for a real digit given as ink 0..1."""
    chosen = {name: scenes.SCENES[name] for name in PHOTO_SCENES} | {"paper_on_table": paper_on_table}
    return {
        f"photo, {name}": (lambda ink, rng, scene=scene: scene(as_mnist_digit(ink), rng))
        for name, scene in chosen.items()
    }


def load_sets(usps_path: str, limit: int | None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The real sets as ink 0..1 (N, H, W) with their labels."""
    usps = np.load(usps_path)
    usps_ink, usps_labels = usps["x"].astype(np.float32) / 255.0, usps["y"].astype(int)
    sets = {
        "usps": (usps_ink, usps_labels),
        "usps box-filling": (np.stack([box_filling(ink) for ink in usps_ink]), usps_labels),
    }
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        logger.warning("scikit-learn is not installed: the 8x8 form digits are left out")
    else:
        forms = load_digits()
        sets["forms 8x8"] = (forms.images.astype(np.float32) / 16.0, forms.target.astype(int))
    return {name: (ink[:limit], labels[:limit]) for name, (ink, labels) in sets.items()}


class Poster:
    """Posts batches of image files to /recognize.json: to the app in this process, or to a running service."""

    def __init__(self, url: str | None) -> None:
        self.url = url
        if url is None:
            from server import create_app

            self.client = create_app().test_client()
        else:
            import requests

            self.session = requests.Session()

    def answers(self, files: list[bytes]) -> list[dict]:
        """The service's answer for each file, in order (an answer is a result body or an error body)."""
        payload = {"images": [base64.b64encode(data).decode("ascii") for data in files]}
        if self.url is None:
            response = self.client.post("/recognize.json", json=payload)
            status, body = response.status_code, response.get_json()
        else:
            response = self.session.post(self.url + "/recognize.json", json=payload, timeout=120)
            status, body = response.status_code, response.json()
        if status != 200:
            return [body] * len(files)
        return body["results"]


def batches(files: list[bytes]) -> Iterator[list[bytes]]:
    """Consecutive runs of files that one request may carry: at most BATCH_IMAGES, its pixels within the request
    budget and its body within the upload limit."""
    batch: list[bytes] = []
    pixels = size = 0
    for data in files:
        width, height = Image.open(io.BytesIO(data)).size
        base64_size = 4 * (len(data) + 2) // 3
        if batch and (
            len(batch) == BATCH_IMAGES
            or pixels + width * height > DEFAULT_MAX_REQUEST_PIXELS
            or size + base64_size > BATCH_BYTES
        ):
            yield batch
            batch, pixels, size = [], 0, 0
        batch.append(data)
        pixels += width * height
        size += base64_size
    if batch:
        yield batch


def measure(poster: Poster, name: str, files: list[bytes], labels: np.ndarray) -> Tally:
    """Post every file and tally the answers against the labels."""
    tally = Tally(name)
    answers = [answer for batch in batches(files) for answer in poster.answers(batch)]
    for label, answer in zip(labels, answers, strict=False):
        tally.add(int(label), answer)
    return tally


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.writers", description=__doc__.split("\n")[0])
    parser.add_argument("--usps", required=True, help="the USPS development set (usps_dev.npz)")
    parser.add_argument("--mnist", help="mnist.npz: also post its 10,000 test digits")
    parser.add_argument("--url", help="a running service (default: the app in this process)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the renderings (default: %(default)s)")
    parser.add_argument("--limit", type=int, help="only the first N digits of each set (quick trials)")
    parser.add_argument(
        "--photos",
        type=int,
        default=DEFAULT_PHOTOS,
        help="digits written into each photo scene (they take most of the time; default: %(default)s)",
    )
    parser.add_argument("--only", help="only the sets and renderings whose name contains this text")
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)

    poster = Poster(arguments.url)
    started = time.monotonic()
    print(
        f"{'set, rendering':<36} {'digits':>6} {'read':>8} {'flagged':>8} {'refused':>8}  class read worst  refusals  confusions (true->read)"
    )
    tallies: list[Tally] = []
    for set_name, (inks, labels) in load_sets(arguments.usps, arguments.limit).items():
        renderings = RENDERINGS | (photo_renderings() if set_name == "usps" else {})
        for rendering_name, render in renderings.items():
            name = f"{set_name}, {rendering_name}"
            if arguments.only and arguments.only not in name:
                continue
            rng = np.random.default_rng([arguments.seed, len(tallies)])
            count = arguments.photos if rendering_name.startswith("photo") else len(inks)
            files = [render(ink, rng) for ink in inks[:count]]
            tallies.append(measure(poster, name, files, labels[:count]))
            print(tallies[-1].row(), flush=True)
    if arguments.mnist:
        from model.decoding import encode_png
        from training.data import load_mnist

        dataset = load_mnist(arguments.mnist)
        limit = arguments.limit or len(dataset.x_test)
        tallies.append(
            measure(
                poster,
                "mnist test, as PNG",
                [encode_png(image) for image in dataset.x_test[:limit]],
                dataset.y_test[:limit],
            )
        )
        print(tallies[-1].row(), flush=True)
    print(f"({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
