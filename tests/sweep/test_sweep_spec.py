"""Sweep specs: committed specs load, bad values are named, overrides, order expansion."""

from __future__ import annotations

import pytest
import yaml

from offload_lab.plan import spec
from offload_lab.plan.overrides import OPTION_FOR_KEY, parse_overrides
from offload_lab.plan.spec import SpecError
from offload_lab.plan.steps import estimate_seconds, expand_steps

GOOD = {"name": "t", "rates": [50, 100], "duration_s": 10, "max_vus": 100}


def check(raw, overrides=None):
    return spec.apply_overrides(raw, overrides or {})


def problems(raw, overrides=None):
    with pytest.raises(SpecError) as info:
        check(raw, overrides)
    return info.value.problems


@pytest.mark.parametrize("path", sorted(spec.SWEEPS_DIR.glob("*.yml")), ids=lambda p: p.name)
def test_committed_specs_load(path):
    s = spec.load(str(path))
    assert s.name == path.stem
    assert expand_steps(s)


def test_committed_specs_exist():
    assert {p.stem for p in spec.SWEEPS_DIR.glob("*.yml")} >= {"seed", "quick", "publishers"}


def test_seed_reproduces_original_study():
    s = spec.load("seed")
    assert s.rates == [50, 100, 150, 200, 250, 300, 350, 400]
    assert (s.duration_s, s.pre_allocated_vus, s.max_vus, s.work_ms) == (30, 50, 100, 1000)
    steps = expand_steps(s)
    order = [f"{st.rate} {st.mode}" for st in steps]
    assert order[:5] == ["50 sync", "50 async", "100 sync", "100 async", "150 sync"]
    assert order[-1] == "400 async" and len(order) == 16
    assert [st.index for st in steps] == list(range(1, 17))
    assert steps[0].filename == "01-sync-50.json" and steps[15].filename == "16-async-400.json"
    assert {st.label for st in steps} == {"sync", "async"}


def test_quick_is_short_and_preallocates():
    s = spec.load("quick")
    assert s.pre_allocated_vus == s.max_vus
    assert estimate_seconds(s) <= 90
    assert set(s.modes) == {"sync", "async"}


def test_publishers_runs_each_publisher_at_same_rates():
    s = spec.load("publishers")
    steps = expand_steps(s)
    by_label = {}
    for st in steps:
        by_label.setdefault(st.label, []).append(st.rate)
        assert st.gateway["PUBLISHER"] == st.label.removesuffix("_gevent")
        assert st.mode == "async"
        assert st.pre_allocated_vus == st.max_vus
    study = {"pika_shared", "pika_per_request", "kombu_pool"}
    assert set(by_label) == study | {"kombu_pool_gevent", "celery", "celery_default_pool", "dramatiq"}
    assert len({tuple(r) for r in by_label.values()}) == 1
    # spec-level gateway settings reach every step; the library series run under gevent
    assert all(st.gateway["PUBLISH_CONFIRM"] == "1" and st.gateway["GUNICORN_WORKERS"] == "2" for st in steps)
    assert {st.gateway["GUNICORN_WORKER_CLASS"] for st in steps if st.label in study} == {"gthread"}
    assert {st.gateway["GUNICORN_WORKER_CLASS"] for st in steps if st.label not in study} == {"gevent"}


def test_defaults_filled_in():
    s = check(GOOD)
    assert s.pre_allocated_vus == 100
    assert s.modes == ["sync", "async"] and s.order == "interleaved"
    assert s.work_ms == 1000 and s.gateway == {}


def test_rate_range():
    s = check({**GOOD, "rates": {"from": 50, "to": 200, "step": 50}})
    assert s.rates == [50, 100, 150, 200]


@pytest.mark.parametrize(
    "change, key",
    [
        ({"bogus": 1}, "bogus"),
        ({"rates": []}, "rates"),
        ({"rates": [0]}, "rates[0]"),
        ({"rates": [50, 6000]}, "rates[1]"),
        ({"rates": [50, "x"]}, "rates[1]"),
        ({"rates": [50, 50]}, "rates"),
        ({"rates": {"from": 50, "to": 10, "step": 5}}, "rates"),
        ({"rates": {"from": 50, "to": 100}}, "rates"),
        ({"rates": {"from": 50, "to": 100, "step": 0}}, "rates.step"),
        ({"rates": "50,100"}, "rates"),
        ({"duration_s": 0}, "duration_s"),
        ({"duration_s": 3601}, "duration_s"),
        ({"duration_s": 1.5}, "duration_s"),
        ({"duration_s": True}, "duration_s"),
        ({"max_vus": 0}, "max_vus"),
        ({"pre_allocated_vus": 200}, "max_vus"),
        ({"pre_allocated_vus": "50"}, "pre_allocated_vus"),
        ({"modes": ["sync", "batch"]}, "modes"),
        ({"modes": []}, "modes"),
        ({"modes": "sync"}, "modes"),
        ({"work_ms": -1}, "work_ms"),
        ({"work_ms": 60001}, "work_ms"),
        ({"order": "random"}, "order"),
        ({"repeat": 0}, "repeat"),
        ({"repeat": 21}, "repeat"),
        ({"repeat": "3"}, "repeat"),
        ({"cooldown_s": -1}, "cooldown_s"),
        ({"drain_timeout_s": "long"}, "drain_timeout_s"),
        ({"request_timeout_s": 1}, "request_timeout_s"),  # must exceed 1000 ms of work
        ({"name": "has space"}, "name"),
        ({"description": 5}, "description"),
        ({"gateway": {"PUBLISHER": "rabbit"}}, "gateway.PUBLISHER"),
        ({"gateway": {"PUBLISH_CONFIRM": "maybe"}}, "gateway.PUBLISH_CONFIRM"),
        ({"gateway": {"GUNICORN_WORKERS": 0}}, "gateway.GUNICORN_WORKERS"),
        ({"gateway": {"GUNICORN_WORKER_CLASS": "eventlet"}}, "gateway.GUNICORN_WORKER_CLASS"),
        ({"gateway": {"GUNICORN_KEEPALIVE": 0}}, "gateway.GUNICORN_KEEPALIVE"),
        ({"gateway": {"AMQP_URL": "amqp://x"}}, "gateway.AMQP_URL"),
        ({"gateway": ["PUBLISHER=x"]}, "gateway"),
        ({"series": []}, "series"),
        ({"series": [{"modes": ["async"]}]}, "series[0].label"),
        ({"series": [{"label": "a", "extra": 1}]}, "series[0].extra"),
        ({"series": [{"label": "a"}, {"label": "a"}]}, "series[1].label"),
        ({"series": [{"label": "a", "modes": ["x"]}]}, "series[0].modes"),
        ({"series": [{"label": "a", "gateway": {"PUBLISHER": "x"}}]}, "series[0].gateway.PUBLISHER"),
    ],
)
def test_bad_values_are_named(change, key):
    found = problems({**GOOD, **change})
    assert any(p.startswith(key + ":") or p.startswith(key + " ") for p in found), found


@pytest.mark.parametrize("missing", ["name", "rates", "duration_s", "max_vus"])
def test_required_keys(missing):
    raw = {k: v for k, v in GOOD.items() if k != missing}
    assert f"{missing}: required" in problems(raw)


def test_all_problems_reported_at_once():
    found = problems({**GOOD, "duration_s": 0, "work_ms": -5, "extra": 1})
    assert len(found) == 3


def test_not_a_mapping():
    with pytest.raises(SpecError):
        spec.validate([1, 2])


def test_gateway_values_normalized_to_strings():
    s = check(
        {**GOOD, "gateway": {"PUBLISH_CONFIRM": True, "GUNICORN_THREADS": "8", "PUBLISH_TIMEOUT_S": 1.5}}
    )
    assert s.gateway == {"PUBLISH_CONFIRM": "1", "GUNICORN_THREADS": "8", "PUBLISH_TIMEOUT_S": "1.5"}


# -------------------------------------------------------------------------------- overrides


def test_parse_overrides():
    o = parse_overrides(
        {
            "rates": "50,100",
            "duration": "10s",
            "max_vus": "200",
            "pre_vus": "150",
            "modes": "async",
            "work_ms": "500",
            "cooldown": "0.5",
            "gateway": "PUBLISHER=pika_shared,PUBLISH_CONFIRM=0",
            "order": None,
        }
    )
    assert o == {
        "rates": [50, 100],
        "duration_s": 10,
        "max_vus": 200,
        "pre_allocated_vus": 150,
        "modes": ["async"],
        "work_ms": 500,
        "cooldown_s": 0.5,
        "gateway": {"PUBLISHER": "pika_shared", "PUBLISH_CONFIRM": "0"},
    }
    assert parse_overrides({"rates": "50:400:50"})["rates"] == {"from": 50, "to": 400, "step": 50}


@pytest.mark.parametrize(
    "option, value",
    [("rates", "50,x"), ("rates", "1:2"), ("duration", "ten"), ("max_vus", "1.5"), ("gateway", "PUBLISHER")],
)
def test_bad_override_syntax_names_option(option, value):
    with pytest.raises(SpecError) as info:
        parse_overrides({option: value})
    assert info.value.problems[0].startswith(f"--{option.replace('_', '-')}:")


def test_unknown_override_option():
    with pytest.raises(SpecError) as info:
        parse_overrides({"colour": "red"})
    assert "--colour" in info.value.problems[0]


def test_overrides_validated_like_the_spec():
    s = spec.load("quick", parse_overrides({"rates": "50,100", "duration": "5"}))
    assert s.rates == [50, 100] and s.duration_s == 5
    with pytest.raises(SpecError) as info:
        overrides = parse_overrides({"duration": "99999", "modes": "sync,nope"})
        spec.load("quick", overrides, OPTION_FOR_KEY)
    text = " ".join(info.value.problems)
    assert "duration_s (--duration)" in text and "modes (--modes)" in text


def test_max_vus_override_follows_default_preallocation():
    s = spec.load("quick", {"max_vus": 200})
    assert s.pre_allocated_vus == 200  # quick leaves pre_allocated_vus to default to max_vus
    s = spec.load("seed", {"max_vus": 400})
    assert (s.pre_allocated_vus, s.max_vus) == (50, 400)  # seed keeps its explicit 50
    s = spec.load("seed", {"max_vus": 20})
    assert (s.pre_allocated_vus, s.max_vus) == (20, 20)
    with pytest.raises(SpecError, match="max_vus"):
        spec.load("seed", {"max_vus": 20, "pre_allocated_vus": 30})


def test_modes_override_applies_to_series():
    s = spec.load("publishers", {"modes": ["sync"]})
    assert {st.mode for st in expand_steps(s)} == {"sync"}


def test_gateway_override_merges():
    s = spec.load("publishers", {"gateway": {"PUBLISH_CONFIRM": "0"}})
    steps = expand_steps(s)
    assert all(
        st.gateway["PUBLISH_CONFIRM"] == "0" and st.gateway["GUNICORN_THREADS"] == "64" for st in steps
    )


def test_spec_by_path_and_unknown_name(tmp_path):
    p = tmp_path / "mine.yml"
    p.write_text(yaml.safe_dump({**GOOD, "name": "mine"}))
    assert spec.load(str(p)).name == "mine"
    with pytest.raises(SpecError, match="unknown spec 'nope'"):
        spec.load("nope")
    with pytest.raises(SpecError, match="no such file"):
        spec.load(str(tmp_path / "missing.yml"))
    bad = tmp_path / "bad.yml"
    bad.write_text("rates: [1,\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        spec.load(str(bad))


# -------------------------------------------------------------------------------- order


def _order(s):
    return [(st.label, st.mode, st.rate) for st in expand_steps(s)]


def test_orders():
    base = {**GOOD, "rates": [50, 100]}
    assert _order(check({**base, "order": "interleaved"})) == [
        ("sync", "sync", 50),
        ("async", "async", 50),
        ("sync", "sync", 100),
        ("async", "async", 100),
    ]
    assert _order(check({**base, "order": "by_mode"})) == [
        ("sync", "sync", 50),
        ("sync", "sync", 100),
        ("async", "async", 50),
        ("async", "async", 100),
    ]
    series = [{"label": "a", "modes": ["async"]}, {"label": "b", "modes": ["async"]}]
    assert _order(check({**base, "series": series, "order": "by_series"})) == [
        ("a", "async", 50),
        ("a", "async", 100),
        ("b", "async", 50),
        ("b", "async", 100),
    ]
    assert _order(check({**base, "series": series, "order": "interleaved"})) == [
        ("a", "async", 50),
        ("b", "async", 50),
        ("a", "async", 100),
        ("b", "async", 100),
    ]


def test_repeat_interleaves_whole_rounds():
    loaded = check({**GOOD, "rates": [50, 100], "repeat": 3})
    steps = expand_steps(loaded)
    assert len(steps) == 12 and [s.index for s in steps] == list(range(1, 13))
    one_round = [(s.mode, s.rate) for s in steps[:4]]
    assert one_round == [("sync", 50), ("async", 50), ("sync", 100), ("async", 100)]
    # all points once, then all again: drift on the host hits every series alike
    assert [(s.mode, s.rate) for s in steps[4:8]] == one_round == [(s.mode, s.rate) for s in steps[8:]]
    assert [s.repeat for s in steps] == [1] * 4 + [2] * 4 + [3] * 4
    assert steps[5].filename == "06-async-50-r2.json" and steps[5].stem == "06-async-50-r2"
    assert estimate_seconds(loaded) == 12 * loaded.duration_s + 11 * loaded.cooldown_s


def test_no_repeat_keeps_the_plain_file_names():
    steps = expand_steps(check({**GOOD, "rates": [50]}))
    assert [s.filename for s in steps] == ["01-sync-50.json", "02-async-50.json"]
    assert {s.repeat for s in steps} == {1}


def test_repeat_override():
    assert parse_overrides({"repeat": "2"}) == {"repeat": 2}
    loaded = spec.apply_overrides({**GOOD, "rates": [50]}, {"repeat": 2})
    assert loaded.repeat == 2 and len(expand_steps(loaded)) == 4
    with pytest.raises(SpecError) as err:
        spec.apply_overrides(GOOD, {"repeat": 50})
    assert any(p.startswith("repeat (--repeat):") for p in err.value.problems)
