"""pytest hook: the stack suites on two processes without starting any stack twice.

Starting a stack (Rasa, action server, console...) is most of what the stack suites cost, so
``make test`` runs tests/e2e and tests/browser with pytest-xdist's ``--dist loadgroup`` and this
hook names each test's group. It runs first (``tryfirst``) because xdist reads the marks in its
own ``pytest_collection_modifyitems``. pytest 9.2 broke that xdist feature (the group no longer
reaches the scheduler: pytest-xdist issue #1386), so pytest is held below 9.2 in pyproject.toml
until an xdist release fixes it; tests/unit/test_stack_groups.py fails if grouping stops working.
"""

from __future__ import annotations

import pytest

# Session-wide stacks, by fixture name: a test using one of them (directly or through another
# fixture) runs on the pytest-xdist process that started it.
SHARED_STACKS = ("stack", "fake_stack")

# Seconds each group kept its process busy (stack start, tests, stop), from the stack suites'
# durations on 2026-12-07 evening (2 cores, a slower machine than the morning's: 782 s in all).
# Groups are handed out longest first, so the last ones to start are short and both processes
# finish together; xdist's own order (most tests first) started the fault drill, one test of
# 72 s, last. The calibration gate made the quality module 180 s (29 s in the morning's list,
# so it started late). Only the order matters: a group not listed counts as 0 s and keeps its
# collection place.
GROUP_SECONDS = {
    "stack": 569,  # with the channels' tests, since they run on the shared stack
    "tests/e2e/test_scale_load.py": 277,
    "tests/e2e/test_quality.py": 180,
    "tests/e2e/test_fuzz_console.py": 111,
    "tests/e2e/test_fault_drill.py": 104,
    "tests/e2e/test_database_outage.py": 50,
    "fake_stack": 49,
    "tests/e2e/test_rabbitmq_pipeline.py": 39,
    "tests/browser/test_dashboard.py": 18,
    "tests/browser/test_kb_related.py": 18,
    "tests/browser/test_kb_locations.py": 16,
}


def pytest_configure(config: pytest.Config) -> None:
    """Keep the group order below: by default xdist sorts groups by their number of tests."""
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Keep each running stack on one process when the stack suites run on several.

    ``make test`` runs tests/e2e and tests/browser with ``--dist loadgroup``: every test of a
    module goes to the process of its group, the shared stack's or fake stack's when any test of
    the module uses it, else the module's own (its module-scoped stacks: the scale profile, the
    fault drill, the database outage...). So no stack is started twice, and one process can wait
    on a drill's restarts while the other runs the shared stack's tests. Groups are then
    ordered longest first (``GROUP_SECONDS``).
    """
    modules: dict[str, list[pytest.Item]] = {}
    for item in items:
        modules.setdefault(item.nodeid.split("::", 1)[0], []).append(item)
    group_of: dict[str, str] = {}
    for module, module_items in modules.items():
        used = {name for item in module_items for name in getattr(item, "fixturenames", ())}
        group = next((name for name in SHARED_STACKS if name in used), module)
        for item in module_items:
            item.add_marker(pytest.mark.xdist_group(group))
            group_of[item.nodeid] = group
    # Longest groups first (a stable sort: tests keep their order within a group).
    items.sort(key=lambda item: -GROUP_SECONDS.get(group_of[item.nodeid], 0))
