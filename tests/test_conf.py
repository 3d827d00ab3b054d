"""conf: the DAGSTREAM dict over documented defaults, typed, cached, cleared on change."""

from __future__ import annotations

from pathlib import Path

from django.test import override_settings

from dagstream_app.conf import CONFIG_DEFAULTS, Config, config


def test_defaults() -> None:
    with override_settings(DAGSTREAM={}):
        assert config() == Config()
    assert CONFIG_DEFAULTS["REPLAY_WINDOW"] == 10_000 == Config().replay_window
    assert CONFIG_DEFAULTS["MAX_FRAME_BYTES"] == 65_536
    assert CONFIG_DEFAULTS["PERMISSION_HOOK"] is None


def test_missing_setting_means_defaults(settings) -> None:
    del settings.DAGSTREAM
    assert config() == Config()


def test_override_merges_over_defaults() -> None:
    with override_settings(DAGSTREAM={"REPLAY_WINDOW": 5, "RATE_LIMIT_BURST": 2}):
        settings = config()
        assert (settings.replay_window, settings.rate_limit_burst) == (5, 2)
        assert settings.max_frame_bytes == CONFIG_DEFAULTS["MAX_FRAME_BYTES"]
    assert config().replay_window == CONFIG_DEFAULTS["REPLAY_WINDOW"]


def test_cache_is_cleared_when_the_setting_changes() -> None:
    first = config()
    assert config() is first  # cached
    with override_settings(DAGSTREAM={"MAX_LAG": 1}):
        assert config().max_lag == 1
    assert config() is not first
    assert config().max_lag == CONFIG_DEFAULTS["MAX_LAG"]


def test_other_settings_leave_the_cache_alone() -> None:
    first = config()
    with override_settings(DEBUG=True):
        assert config() is first


def test_unknown_keys_are_left_to_the_check() -> None:
    with override_settings(DAGSTREAM={"REPLAY_WINDOWS": 1}):
        assert config() == Config()


def test_every_setting_is_documented() -> None:
    table = (Path(__file__).resolve().parent.parent / "docs" / "settings.md").read_text()
    missing = [key for key in CONFIG_DEFAULTS if f"| `{key}` |" not in table]
    assert missing == []
