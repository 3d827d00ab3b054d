"""conf: the DAGSTREAM dict over documented defaults, cached, cleared on change."""

from __future__ import annotations

from pathlib import Path

from django.test import override_settings

from dagstream_app import conf
from dagstream_app.conf import CONFIG_DEFAULTS, get_config


def test_defaults() -> None:
    with override_settings(DAGSTREAM={}):
        assert get_config() == CONFIG_DEFAULTS
    assert CONFIG_DEFAULTS["REPLAY_WINDOW"] == 10_000
    assert CONFIG_DEFAULTS["MAX_FRAME_BYTES"] == 65_536
    assert CONFIG_DEFAULTS["PERMISSION_HOOK"] is None


def test_missing_setting_means_defaults(settings) -> None:
    del settings.DAGSTREAM
    assert get_config() == CONFIG_DEFAULTS


def test_override_merges_over_defaults() -> None:
    with override_settings(DAGSTREAM={"REPLAY_WINDOW": 5, "RATE_LIMIT_BURST": 2}):
        config = get_config()
        assert (config["REPLAY_WINDOW"], config["RATE_LIMIT_BURST"]) == (5, 2)
        assert config["MAX_FRAME_BYTES"] == CONFIG_DEFAULTS["MAX_FRAME_BYTES"]
    assert get_config()["REPLAY_WINDOW"] == CONFIG_DEFAULTS["REPLAY_WINDOW"]


def test_cache_is_cleared_when_the_setting_changes() -> None:
    first = get_config()
    assert get_config() is first  # cached
    with override_settings(DAGSTREAM={"MAX_LAG": 1}):
        assert get_config()["MAX_LAG"] == 1
    assert get_config() is not first
    assert get_config()["MAX_LAG"] == CONFIG_DEFAULTS["MAX_LAG"]


def test_other_settings_leave_the_cache_alone() -> None:
    first = get_config()
    with override_settings(DEBUG=True):
        assert get_config() is first


def test_defaults_are_not_mutated_by_overrides() -> None:
    with override_settings(DAGSTREAM={"REPLAY_WINDOW": 1}):
        get_config()
    assert conf.CONFIG_DEFAULTS["REPLAY_WINDOW"] == 10_000


def test_every_setting_is_documented() -> None:
    table = (Path(__file__).resolve().parent.parent / "docs" / "settings.md").read_text()
    missing = [key for key in CONFIG_DEFAULTS if f"| `{key}` |" not in table]
    assert missing == []
