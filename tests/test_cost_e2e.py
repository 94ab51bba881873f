"""End to end: the costliest small inputs, two at a time, against the Procfile's gunicorn as the 512 MB dyno runs it.

The service runs with its default settings and WEB_CONCURRENCY=2. Each case is measured by the
cost battery (bench/cost.py, inputs from bench/hostile.py): two clients post it at once, one per
worker, while the RSS of the master and its workers is sampled every 20 ms. The goals, for any
request however small or odd: JSON answers (200, or 413 too_large / 422 no_digit or
too_many_marks), each within 10 s, master and workers together within 512 MB throughout (as sampled,
and as the sum of each process's own peak, which two clients can make coincide), no worker timed out
or killed (one may restart itself after its request to give memory back), each worker still there
within 25 % of its idle RSS, and no alarm in the service's log. A case past 4 GB in all has the service killed at once, and fails.
"""

import pytest

from bench.cost import GOAL_MEGABYTES, GOAL_SECONDS, ROUTE_LABELS, Service, measure_case, row
from bench.hostile import CASES_BY_NAME, DIGIT_ROUTE, MAX_BATCH_IMAGES, NUMBER_ROUTE, Bodies

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

# The most telling cases of the battery, and the route each is posted to.
COSTLY = (
    ("black-block-960", NUMBER_ROUTE),  # one solid 960x960 block of ink, read as a number
    ("limit-I16-png", DIGIT_ROUTE),  # 16-bit grayscale at the pixel limit
    ("limit-F-tiff", DIGIT_ROUTE),  # 32-bit floats at the pixel limit
    ("limit-RGBA-webp", DIGIT_ROUTE),  # a 3 kB lossless WebP of RGBA at the pixel limit
    ("fit-RGBA-webp", DIGIT_ROUTE),  # the largest such WebP the service decodes
    ("fit-F-tiff", DIGIT_ROUTE),  # the largest float TIFF the service decodes
    (f"batch{MAX_BATCH_IMAGES}-limit-RGBA-webp", DIGIT_ROUTE),  # a full batch of the WebP at the limit
    (f"batch{MAX_BATCH_IMAGES}-fit-RGBA-webp", DIGIT_ROUTE),  # a full batch of the largest decoded WebP
    (f"batch{MAX_BATCH_IMAGES}-black-block-960", NUMBER_ROUTE),  # a full batch of the block, as numbers
)


@pytest.fixture(scope="module")
def bodies(tmp_path_factory) -> Bodies:
    """The cases' bodies, all made before the service starts (some encoders take a second at the pixel limit)."""
    made = Bodies(tmp_path_factory.mktemp("bodies"))
    for name, _ in COSTLY:
        made.path(CASES_BY_NAME[name])
    return made


@pytest.fixture(scope="module")
def service(bodies, tmp_path_factory):
    """The Procfile's gunicorn with the defaults and two workers, warmed and idle (started again if a case had it killed)."""
    with Service(tmp_path_factory.mktemp("gunicorn")) as running:
        yield running


@pytest.mark.parametrize(("name", "route"), COSTLY, ids=[f"{name}-{ROUTE_LABELS[route]}" for name, route in COSTLY])
def test_a_costly_input_sent_to_both_workers_at_once_is_answered_in_time_within_the_dynos_memory(
    service, bodies, name, route
):
    case = CASES_BY_NAME[name]
    result = measure_case(service, case, route, bodies.body(case))
    print(row(result))
    for answer in result.answers:
        assert answer.status is not None, f"no answer: {row(result)}"
        assert answer.is_json and answer.acceptable, f"not a JSON 200/413/422: {row(result)}"
    assert result.seconds <= GOAL_SECONDS, f"slower than {GOAL_SECONDS:.0f} s: {row(result)}"
    assert not result.capped and result.worst_megabytes <= GOAL_MEGABYTES, (
        f"over {GOAL_MEGABYTES:.0f} MB: {row(result)}"
    )
    # a worker may restart itself after its request to give memory back (gunicorn.conf.py), never die or time out
    assert not result.died, f"workers died: {row(result)}"
    assert result.failures == [], row(result)
