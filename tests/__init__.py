import pytest

# the shared helpers' asserts explain their failures as the test modules' own do (registered before they are imported)
pytest.register_assert_rewrite("tests.helpers", "tests.hostile_requests")
