"""What one request may cost by default: the limits the service is built to, in one place.

Plain numbers, and the two small records that carry a request's limits (`DecodeLimits`, `NumberLimits`), with nothing
heavy imported, so that the gunicorn master (web/settings.py, gunicorn.conf.py) reads them without loading NumPy, SciPy or
Pillow: it stays small, and its workers load those.
"""

from dataclasses import dataclass

# The default ceiling on decoded pixels, checked from the header (a 50-megapixel phone photo still fits).
DEFAULT_MAX_PIXELS = 50_000_000
# The most groups of strokes the networks may read for one request's numbers (model.number_reader.Budget). A number of 2-6
# digits reads 225 on average and at most 2,725 of 2,000 (bench draws, seeds 7 and 8); each read costs about 0.9 ms of
# CPU here, so 3,000 take 2.7 s. A page of separate specks or scribbles reaches it in 2.5-2.7 s of CPU, and one with more
# marks than this is refused before any read.
DEFAULT_MAX_GROUPS = 3_000
# The most pixels the reads of one request's numbers may work on (model.number_reader.Budget): each group's window (its ink's
# box and a 3-pixel rim), each cut piece's pixels once per slant tried, each line's window; about 30 ns each. A number
# of 2-6 digits the bench's size (72-pixel digits) works on 1.1 million on average and at most 19 million of 2,000; drawn
# 2.8 times as large (as on the drawing page), 5.5 million on average and at most 61 million of 600. A solid block or
# lines of touching scribbles reach it in 2.7-4.2 s of CPU, both limits together in at most 4.4 s.
DEFAULT_MAX_READ_PIXELS = 80_000_000
# The most memory decoding one upload's first frame may take: the decoded picture in Pillow's storage and the decoder's
# own buffers (libwebp's canvases, a progressive JPEG's coefficients, a TIFF strip), told from the header before any
# pixel is decoded (model.decoding.decode_cost). At 64 MiB a worker peaked up to 87 MB over its resting size, and two
# full batches of 16-bit PNGs at that size took master + 2 workers to 488 MB: 48 MiB keeps a margin under the 512 MB
# dyno for inputs no battery has. It lets through a 50-megapixel grayscale or palette PNG, a 12-megapixel RGB(A) PNG, any
# baseline phone JPEG (decoded at 1/2-1/8 scale) and progressive ones up to about 15 megapixels; WebPs (16 bytes a
# pixel) up to 3 megapixels.
DEFAULT_MAX_DECODED_BYTES = 48 * 2**20
# The most decoding one request may do, in pixels, shared in order by a batch's images; an RLE BMP's pixel counts six
# times (Pillow decodes it in Python: model.decoding.DECODE_WORK_PER_PIXEL). The slowest formats per pixel (RGBA PNG,
# APNG, TIFF and WebP, 55-60 megapixels a second here alone, about half that with both workers busy) read a batch of
# 64 at the other limits in a few seconds: at 150 megapixels, two batches of the largest WebPs still decoded took 5.9 s
# (8.0 s read as numbers) with both workers busy, so 100. 64 canvases or photos (10 MB of body) are far below it, and
# any one image the other limits allow fits.
DEFAULT_MAX_REQUEST_PIXELS = 100_000_000


@dataclass(frozen=True)
class DecodeLimits:
    """What decoding one request's images may cost (model/decoding.py): one image's pixels and memory, the request's pixels."""

    max_pixels: int = DEFAULT_MAX_PIXELS
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES
    max_request_pixels: int = DEFAULT_MAX_REQUEST_PIXELS


@dataclass(frozen=True)
class NumberLimits(DecodeLimits):
    """What reading one request's numbers may cost: its decoding, then its group reads and the pixels they work on
    (model/number_reader.py's Budget)."""

    max_groups: int = DEFAULT_MAX_GROUPS
    max_read_pixels: int = DEFAULT_MAX_READ_PIXELS


# The limits the service is built to, for callers that name none (a NumberLimits is a DecodeLimits too).
DEFAULT_LIMITS = NumberLimits()
