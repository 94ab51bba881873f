"""What one request may cost by default: the limits the service is built to, in one place.

Plain numbers and no imports, so that the gunicorn master (web/settings.py, gunicorn.conf.py)
reads them without loading NumPy, SciPy or Pillow: it stays small, and its workers load those.
"""

# The default ceiling on decoded pixels, checked from the header (a 50-megapixel phone photo still fits).
default_max_pixels = 50_000_000
# The most groups of strokes the networks may read for one request's numbers. A number of 2-6 digits reads about 220 on
# average and at most 2,725 of 2,000 (in 10 s at worst), one of 12 digits up to 1,600; a page of hundreds of random
# strokes or a line of touching scribbles reads over 14,000 and would hold a worker for 20-25 s, near the router's 30 s.
default_max_groups = 5_000
# The most pixels the reads of one request's numbers may work on: each group's window (its ink's box and a 3-pixel rim),
# each cut stroke's pixels once per slant tried, each line's window.
default_max_read_pixels = 60_000_000
