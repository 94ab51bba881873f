"""The settings table (web/settings.py): defaults, checks, and the README's configuration table and docs/API.md's errors
table kept in step with it and with the error codes (web/errors.py)."""

import re
from pathlib import Path

import pytest

from model.machine import core_count, memory_limit
from tests.helpers import PROJECT_ROOT, cgroup
from web.errors import ERRORS
from web.settings import SETTINGS, SettingError, current_settings, fitting_workers, main, read_settings

MB = 2**20


def test_every_default_is_allowed_and_the_defaults_are_what_the_readme_says():
    settings = read_settings({})
    assert settings["MAX_CONTENT_LENGTH"] == 10 * 1024 * 1024
    assert settings["WEB_CONCURRENCY"] == fitting_workers({}) and 1 <= settings["WEB_CONCURRENCY"] <= core_count()
    # each default, written out as an operator would, reads back as itself
    for item in SETTINGS:
        if callable(item.default) or item.default is None or item.name in ("API_KEYS", "CORS_ORIGINS"):
            continue
        written = str(int(item.default)) if isinstance(item.default, bool) else str(item.default)
        assert item.read({item.name: written}) == item.default, item.name


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PORT", "0"),
        ("PORT", "80a"),
        ("WEB_CONCURRENCY", "0"),
        ("WEB_THREADS", "-1"),
        ("MAX_UPLOAD_BYTES", "abc"),
        ("MAX_UPLOAD_BYTES", str(10**12)),
        ("MAX_IMAGE_PIXELS", "-5"),
        ("MAX_BATCH_IMAGES", "0"),
        ("MAX_NUMBER_GROUPS", "1.5"),
        ("REQUEST_READ_TIMEOUT", "0"),
        ("REQUEST_READ_TIMEOUT", "nan"),
        ("MICRO_BATCH_WAIT_MS", "-1"),
        ("SENTRY_TRACES_SAMPLE_RATE", "2"),
        ("SENTRY_DSN", "not a dsn"),
        ("MODEL_RUNTIME", "onnx"),
        ("MODEL_PATH", "/nowhere.keras"),
        ("CORS_ORIGINS", "https://app.example.com/path"),
        ("ENABLE_DEBUG_ROUTES", "maybe"),
        ("LOG_LEVEL", "LOUD"),
        ("HOST", "a\nb"),
    ],
)
def test_a_value_that_is_not_allowed_names_the_variable_its_value_and_what_is_allowed(variable, value):
    with pytest.raises(SettingError) as raised:
        read_settings({variable: value})
    message = str(raised.value)
    assert message.startswith(f"{variable}=") and "is not allowed: " in message and "\n" not in message
    item = next(item for item in SETTINGS if item.name == variable)
    assert message.endswith(item.allowed + ".")
    assert (repr(value) in message) != item.secret


def test_allowed_values_are_read():
    settings = read_settings(
        {
            "MODEL_RUNTIME": "KERAS",
            "ENABLE_DEBUG_ROUTES": "yes",
            "LOG_LEVEL": "debug",
            "PORT": " 8080 ",
            "CORS_ORIGINS": "https://a.example.com, http://localhost:3000",
            "MAX_NUMBER_GROUPS": "2_000",
        }
    )
    assert (
        settings["MODEL_RUNTIME"] == "keras"
        and settings["ENABLE_DEBUG_ROUTES"] is True
        and settings["LOG_LEVEL"] == "DEBUG"
    )
    assert settings["PORT"] == 8080 and settings["MAX_NUMBER_GROUPS"] == 2000
    assert settings["CORS_ORIGINS"] == ("https://a.example.com", "http://localhost:3000")
    assert read_settings({"SENTRY_TRACES_SAMPLE_RATE": "0"})["SENTRY_TRACES_SAMPLE_RATE"] == 0.0  # asked for: kept


def test_a_process_reads_its_settings_once_and_cannot_change_them(monkeypatch):
    current_settings.cache_clear()
    try:
        monkeypatch.setenv("MAX_BATCH_IMAGES", "7")
        settings = current_settings()
        monkeypatch.setenv("MAX_BATCH_IMAGES", "8")
        assert current_settings() is settings and settings["MAX_BATCH_IMAGES"] == 7
        with pytest.raises(TypeError):
            settings["MAX_BATCH_IMAGES"] = 9
    finally:
        current_settings.cache_clear()


def test_the_check_prints_one_line_and_fails(monkeypatch, capsys):
    monkeypatch.setenv("MAX_UPLOAD_BYTES", "abc")
    assert main() == 2
    assert capsys.readouterr().err == (
        "digit-recognition: MAX_UPLOAD_BYTES='abc' is not allowed: a whole number of bytes from 1 to 33,554,432.\n"
    )
    monkeypatch.delenv("MAX_UPLOAD_BYTES")
    assert main() == 0


def test_the_readme_configuration_table_lists_every_setting_with_its_default():
    readme = (PROJECT_ROOT / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = {match[1]: match[2] for match in re.finditer(r"^\| `([A-Z_]+)` \| ([^|]+) \|", section, re.M)}
    for item in SETTINGS:
        assert item.name in rows, item.name
        if callable(item.default) or item.default in ((), "", False, None):
            continue
        default = item.default
        if isinstance(default, float) and default.is_integer():
            default = int(default)
        if item.name == "MODEL_PATH":
            default = Path(default).relative_to(PROJECT_ROOT)
        assert str(default) in rows[item.name].replace(",", "").replace("`", ""), (item.name, rows[item.name])


def test_the_api_docs_errors_table_lists_every_error_code_with_its_status():
    api = (PROJECT_ROOT / "docs" / "API.md").read_text()
    section = api.split("\n## Errors\n", 1)[1].split("\n## ", 1)[0]
    rows = {match[2]: int(match[1]) for match in re.finditer(r"^\| (\d{3}) \| `([a-z_]+)` \|", section, re.M)}
    assert rows == {code: error.status for code, error in ERRORS.items()}


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize(
    ("dyno", "memory", "cores", "workers"),
    [
        # Heroku's dynos: standard ones run on 8 shared cores, performance ones on their own
        ("standard-1X", 512 * MB, 8, 2),
        ("standard-2X", 1024 * MB, 8, 4),
        ("performance-M", 2560 * MB, 2, 2),
        ("performance-L", 14 * 1024 * MB, 8, 8),
        ("a container of 200 MB", 200 * MB, 4, 1),
    ],
)
def test_the_default_worker_count_is_one_per_core_as_many_as_the_memory_holds(
    monkeypatch, tmp_path, version, dyno, memory, cores, workers
):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(cores)), raising=False)  # Linux's only
    limits = cgroup(tmp_path, memory, version=version)
    assert memory_limit(limits) == memory and core_count(limits) == cores
    assert fitting_workers({}, limits) == workers, dyno


def test_a_cpu_quota_and_threads_and_keras_mean_fewer_workers(monkeypatch, tmp_path):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(16)), raising=False)
    limits = cgroup(tmp_path, 14 * 1024 * MB, quota="250000 100000")  # 2.5 CPUs
    assert core_count(limits) == 3 and fitting_workers({}, limits) == 3
    assert fitting_workers({"MODEL_RUNTIME": "keras"}, cgroup(tmp_path / "1GB", 1024 * MB)) == 1
    assert fitting_workers({"WEB_THREADS": "4"}, cgroup(tmp_path / "1GB-threads", 1024 * MB)) == 1


def test_a_worker_count_a_buildpack_chose_is_set_aside_and_the_operators_is_obeyed():
    fit = fitting_workers({})
    # Heroku's classic Python buildpack: 2 x cores + 1 on performance dynos, 33 on performance-2XL (over the limit)
    for chosen in ("5", "17", "33"):
        environ = {"WEB_CONCURRENCY": chosen, "WEB_CONCURRENCY_SET_BY": "heroku/python"}
        assert read_settings(environ)["WEB_CONCURRENCY"] == fit
    assert read_settings({"WEB_CONCURRENCY": "3"})["WEB_CONCURRENCY"] == 3
    assert read_settings({"WEB_CONCURRENCY": "3", "WEB_CONCURRENCY_SET_BY": ""})["WEB_CONCURRENCY"] == 3
    with pytest.raises(SettingError, match="WEB_CONCURRENCY='33' is not allowed"):
        read_settings({"WEB_CONCURRENCY": "33"})


def test_litert_needs_only_the_tflite_export_and_keras_its_keras_file(tmp_path):
    for name in ("digits.tflite", "digits.json"):
        (tmp_path / name).write_bytes((PROJECT_ROOT / "model" / name).read_bytes())
    model = str(tmp_path / "digits.keras")  # not there, as in the slug (.slugignore)
    assert read_settings({"MODEL_PATH": model})["MODEL_PATH"] == model
    with pytest.raises(SettingError) as raised:
        read_settings({"MODEL_PATH": model, "MODEL_RUNTIME": "keras"})
    assert str(raised.value).startswith(f"MODEL_PATH={model!r} is not allowed with MODEL_RUNTIME=keras: ")
    (tmp_path / "digits.tflite").unlink()
    with pytest.raises(SettingError, match="MODEL_PATH="):
        read_settings({"MODEL_PATH": model})
