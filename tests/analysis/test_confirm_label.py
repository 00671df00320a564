"""An async step whose gateway did not wait for publisher confirms is labelled so, everywhere the
label goes (tables, charts, CSV): its 202 does not mean the broker had the task."""

from __future__ import annotations

import pytest
from record_testlib import step_record

from offload_lab.analysis.load import NO_CONFIRM_SUFFIX, loaded_step


def step(mode, confirm, label="kombu_pool"):
    gateway = {"PUBLISHER": "kombu_pool"} if confirm is None else {"PUBLISH_CONFIRM": confirm}
    return step_record({"mode": mode, "rate": 100, "label": label, "gateway": gateway})


@pytest.mark.parametrize("confirm", ["0", "false", "off"])
def test_confirms_off_is_in_the_label(confirm):
    loaded = loaded_step(step("async", confirm), "steps/01-async-100.json", [])
    assert loaded.label == "kombu_pool" + NO_CONFIRM_SUFFIX == "kombu_pool (no confirms)"


@pytest.mark.parametrize("mode, confirm", [("async", "1"), ("async", None), ("sync", "0")])
def test_other_steps_keep_their_label(mode, confirm):
    assert loaded_step(step(mode, confirm), "steps/01-x-100.json", []).label == "kombu_pool"
