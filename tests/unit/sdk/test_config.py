from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
from performance_monitor.core.monitor import Monitor
from performance_monitor.utils.config import Config, ConfigError


@pytest.mark.parametrize(
    ("given", "fraction"),
    [
        (0, 0.0),
        (0.3, 0.3),
        (1, 1.0),
        (1.0, 1.0),
        (10.0, 0.1),
        (100.0, 1.0),
        ("25", 0.25),
        (50, 0.5),
    ],
)
def test_sampling_rate_accepts_fraction_and_percentage(given: object, fraction: float) -> None:
    assert Config({"sampling_rate": given}).sampling_rate == pytest.approx(fraction)


@pytest.mark.parametrize("bad", [-0.1, 100.5, 1000, "lots", None.__class__, True])
def test_sampling_rate_out_of_range_names_key_and_range(bad: object) -> None:
    with pytest.raises(ConfigError) as error:
        Config({"sampling_rate": bad})
    message = str(error.value)
    assert "sampling_rate" in message and "[0, 1]" in message and "(1, 100]" in message


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("batch_size", 0, "batch_size must be an integer in [1, 10000]"),
        ("batch_size", 2.5, "batch_size"),
        ("request_timeout", -1, "request_timeout must be a number in [0.01, 600]"),
        ("api_endpoint", "ftp://x", "api_endpoint must be an http(s):// URL"),
        ("enabled", "maybe", "enabled must be a boolean"),
        ("excluded_paths", 5, "excluded_paths must be a list of strings"),
    ],
)
def test_invalid_values_raise_with_key_and_allowed_range(
    key: str, value: object, fragment: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        Config({key: value})


def test_defaults_and_aliases() -> None:
    config = Config(
        {"project_key": "pk-s3cret", "exclude_paths": ["/health"], "custom_tags": {"a": 1}}
    )
    assert config.excluded_paths == ["/health"]
    assert config.tags == {"a": "1"}
    assert config.sampling_rate == 0.1 and config.batch_size == 50 and config.async_send is True
    assert config.disabled_reason is None
    assert "pk-s3cret" not in repr(config)  # the credential is not printed


def test_environment_variables_override_file_and_explicit_values_win(tmp_path: Path) -> None:
    file = tmp_path / "performance_config.yaml"
    file.write_text(
        "project_key: from-file\nsampling_rate: 10.0\nbatch_size: 7\nexcluded_paths: [/a]\n"
    )
    environ = {
        "PYSTRUMENT_SAMPLING_RATE": "0.5",
        "PYSTRUMENT_EXCLUDED_PATHS": "/x,/y",
        "PYSTRUMENT_TRACK_MEMORY": "true",
    }
    config = Config({"batch_size": 9}, file=file, environ=environ)
    assert config.project_key == "from-file"
    assert config.sampling_rate == 0.5
    assert config.excluded_paths == ["/x", "/y"]
    assert config.track_memory is True
    assert config.batch_size == 9


def test_json_file_and_config_file_env_var(tmp_path: Path) -> None:
    file = tmp_path / "conf.json"
    file.write_text(
        json.dumps({"project_key": "j", "sampling_rate": 100.0, "max_trace_duration": 3})
    )
    config = Config(environ={"PYSTRUMENT_CONFIG_FILE": str(file)})
    assert (config.project_key, config.sampling_rate, config.max_trace_duration) == ("j", 1.0, 3.0)


def test_django_settings_dict() -> None:
    config = Config.from_django_settings(
        {
            "PROJECT_KEY": "d",
            "SAMPLING_RATE": 30,
            "EXCLUDE_PATHS": ["/admin/"],
            "TRACK_SQL": False,
            "ASYNC_SEND": False,
        }
    )
    assert config.project_key == "d"
    assert config.sampling_rate == pytest.approx(0.3)
    assert config.excluded_paths == ["/admin/"]
    assert config.track_sql is False and config.async_send is False


def test_missing_project_key_disables_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="performance_monitor")
    monitors = [Monitor(Config({}), framework="flask-test-missing-key") for _ in range(3)]
    assert all(not m.active for m in monitors)
    assert all(m.begin("GET", "/") is None for m in monitors)
    warnings = [r for r in caplog.records if "no project key" in r.getMessage()]
    assert len(warnings) == 1


def test_unknown_keys_are_warned_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="performance_monitor")
    Config({"sampling_rat": 0.2})
    assert "sampling_rat" in caplog.text


def test_performance_monitor_prefix_and_pystrument_prefix_wins(tmp_path: Path) -> None:
    file = tmp_path / "other.json"
    file.write_text(json.dumps({"project_key": "from-file", "batch_size": 3}))
    environ = {
        "PERFORMANCE_MONITOR_CONFIG_FILE": str(file),
        "PERFORMANCE_MONITOR_SAMPLING_RATE": "25",
        "PERFORMANCE_MONITOR_SERVER_TIMING": "on",
        "PERFORMANCE_MONITOR_TRACK_SQL": "false",
        "PYSTRUMENT_TRACK_SQL": "true",
    }
    config = Config(environ=environ)
    assert (config.project_key, config.batch_size) == ("from-file", 3)
    assert config.sampling_rate == 0.25
    assert config.server_timing is True
    assert config.track_sql is True
    assert Config(environ={}).server_timing is False
