"""broadcast: channel-layer group names valid for any DAG id."""

from __future__ import annotations

from dagstream_app import broadcast


def test_group_names_stay_valid_for_long_ids() -> None:
    short, long = broadcast.group_name("a.b-c_d"), broadcast.group_name("x" * 100)
    assert short == "dagstream.a.b-c_d"
    assert len(long) < 100
    assert len(broadcast.control_group_name("x" * 100)) < 100
    assert broadcast.control_group_name("x" * 100).endswith(".control")
    assert broadcast.group_name("x" * 100) != broadcast.group_name("x" * 99 + "y")


def test_all_names_what_the_other_modules_use() -> None:
    import re
    from pathlib import Path

    app = Path(broadcast.__file__).parent
    used = {
        name
        for path in app.rglob("*.py")
        if path.name != "broadcast.py"
        for name in re.findall(r"\bbroadcast\.([A-Za-z_]\w*)", path.read_text())
    }
    assert {"publish", "publish_async", "publish_deleted", "group_name"} <= used
    assert used <= set(broadcast.__all__)
