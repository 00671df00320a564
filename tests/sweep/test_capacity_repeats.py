"""`fab capacity`'s boundary repeats (offload_lab/capacity_repeats.py) against fake probes: the
highest passing and the lowest failing rate probed again, interleaved; a flipped verdict walks
down (the capacity) or up (the top of the spread) to the next rate; the repeats' own budget; the
spread of the verdicts and of the figure that decided them."""

from __future__ import annotations

from collections import Counter

from offload_lab.capacity.probe import Probe, Slo
from offload_lab.capacity.repeats import repeat_budget
from offload_lab.capacity.result import CapacityResult
from offload_lab.capacity.search import MAX_PROBES, search

SEARCH_RATES = [50, 100, 200, 400, 800, 1600, 1200, 1000, 1100, 1050]  # to 1,000/s, start 50


def lab(capacity, flips=(), invalid=()):
    """A fake probe that passes up to `capacity`, except the (rate, nth probe at that rate) in
    `flips`, whose verdict is the other one; (rate, n) in `invalid` fails limited by the loadgen."""
    seen: Counter[int] = Counter()
    rates: list[int] = []

    def probe(rate):
        seen[rate] += 1
        rates.append(rate)
        key = (rate, seen[rate])
        passed = (rate <= capacity) != (key in flips) and key not in invalid
        p95 = 12.0 + seen[rate] if passed else 30.0 + seen[rate]
        if passed:
            return Probe(rate, True, figures={"p95_ms": p95})
        reasons = [f"p95 {p95:.1f} ms over the SLO 20 ms"]
        bottleneck = "loadgen" if key in invalid else "gateway"
        return Probe(
            rate, False, reasons, ["x"], bottleneck, key in invalid, None, {"p95_ms": p95}, ["p95_ms"]
        )

    return probe, rates


def test_the_boundary_is_probed_again_interleaved():
    probe, rates = lab(1000)
    result = search(probe, start=50, max_rate=5000, boundary_repeats=3)
    assert rates == SEARCH_RATES + [1000, 1050, 1000, 1050]  # pass rate, fail rate, pass, fail
    assert result.capacity == 1000 and result.first_failure.rate == 1050
    assert result.stopped == "within 5% (or 1/s); repeats: the boundary probed 3 times"
    spread = result.spread
    assert [(v.rate, v.passed, len(v.probes)) for v in spread.rates] == [(1000, 3, 3), (1050, 0, 3)]
    assert spread.flipped_rates == [] and spread.highest_passing_rps == 1000
    assert spread.text() == (
        "verdicts never flipped: 1,000/s passed 3 of 3 (p95 14.0 [13.0-15.0] ms); "
        "1,050/s passed 0 of 3 (p95 32.0 [31.0-33.0] ms)"
    )


def test_one_repeat_is_the_search_alone():
    probe, rates = lab(1000)
    result = search(probe, start=50, max_rate=5000, boundary_repeats=1)
    assert rates == SEARCH_RATES and result.stopped == "within 5% (or 1/s)"
    assert result.spread.text() == "unknown: no rate was probed more than once (boundary_repeats 1)"


def test_a_passing_rate_that_fails_a_repeat_walks_down_to_one_that_passes_every_time():
    probe, rates = lab(1000, flips={(1000, 2)})
    result = search(probe, start=50, max_rate=5000, boundary_repeats=3)
    # 1,000 fails its second probe: the passing side walks down to 800 (the search's next pass),
    # still interleaved with the failing side
    assert rates[len(SEARCH_RATES) :] == [1000, 1050, 800, 1050, 800]
    assert result.capacity == 800 and all(p.passed for p in result.probes if p.rate == 800)
    assert sum(1 for p in result.probes if p.rate == 800) == 3
    assert result.spread.flipped_rates == [1000] and result.spread.highest_passing_rps == 1000
    assert result.first_failure.rate == 1000  # the lowest rate that failed, in any repeat
    assert "first failure: 1,000/s (failed 1 of 2 probes): p95 32.0 ms over the SLO 20 ms" in result.lines()
    assert result.headline().startswith("async capacity: 800/s")
    assert result.spread.text().startswith("verdicts flipped at 1,000/s: 800/s passed 3 of 3")


def test_a_failing_rate_that_passes_a_repeat_walks_up_to_one_that_fails_every_time():
    probe, rates = lab(1000, flips={(1050, 2)})
    result = search(probe, start=50, max_rate=5000, boundary_repeats=3)
    assert rates[len(SEARCH_RATES) :] == [1000, 1050, 1000, 1100, 1100]
    assert result.capacity == 1000  # 1,050 passed once, not in every repeat
    spread = result.spread
    assert [(v.rate, v.verdict) for v in spread.rates] == [
        (1000, "passed"),
        (1050, "flipped"),
        (1100, "failed"),
    ]
    assert spread.highest_passing_rps == 1050


def test_a_passing_rate_with_nothing_passing_below_walks_down_to_half():
    probe, rates = lab(50, flips={(50, 2)})
    result = search(probe, start=50, max_rate=5000, boundary_repeats=2)
    assert rates[:7] == [50, 100, 75, 62, 56, 53, 51]
    assert rates[7:] == [50, 51, 25, 25]  # 50 fails its repeat: half of it, probed twice
    assert result.capacity == 25 and result.spread.flipped_rates == [50]


def test_the_repeats_have_a_budget_and_the_passing_side_keeps_what_it_needs():
    # every rate fails its second probe: the passing side walks down and down
    flips = {(rate, 2) for rate in range(1, 2000)}
    probe, rates = lab(1000, flips=flips)
    result = search(probe, start=50, max_rate=5000, boundary_repeats=3)
    repeats = rates[len(SEARCH_RATES) :]
    assert len(repeats) == repeat_budget(3) == 8
    assert len(rates) <= MAX_PROBES + repeat_budget(3)
    # each side walks on after every flip; with one probe left, the failing side's turn goes to
    # the passing side, which decides the capacity
    assert repeats == [1000, 1050, 800, 1100, 400, 1200, 200, 100]
    assert result.stopped.endswith("repeats: 8 repeats (the most the boundary gets)")
    assert result.capacity == 50 and result.spread.flipped_rates == [
        100,
        200,
        400,
        800,
        1000,
        1050,
        1100,
        1200,
    ]


def test_max_rate_passing_repeats_only_the_passing_side():
    probe, rates = lab(10_000)
    result = search(probe, start=1000, max_rate=3000, boundary_repeats=3)
    assert rates == [1000, 2000, 3000, 3000, 3000]
    assert result.capacity == 3000 and result.first_failure is None
    assert "3,000/s (or more" in result.headline()


def test_an_invalid_search_is_not_repeated_and_an_invalid_repeat_invalidates():
    probe, rates = lab(300, invalid={(400, 1)})
    invalid = search(probe, start=100, max_rate=5000, boundary_repeats=3)
    assert rates == [100, 200, 400] and invalid.invalid
    probe, rates = lab(1000, invalid={(1050, 2)})
    result = search(probe, start=50, max_rate=5000, boundary_repeats=3)
    assert rates[len(SEARCH_RATES) :] == [1000, 1050]  # the limited repeat ends the repeats
    assert result.invalid and result.as_dict()["valid"] is False
    assert result.headline() == (
        "async capacity: INVALID: the load generator, not the lab, limited the probe at 1050/s"
    )


def test_the_spread_gives_each_boundary_rates_verdicts_and_the_figure_that_decided_them():
    def passing(p95):
        return Probe(100, True, figures={"p95_ms": p95})

    def erring(pct):
        return Probe(110, False, [f"errors {pct} % over 0.1 %"], [], None, False, None,
                     {"p95_ms": 9.0, "error_pct": pct}, ["error_pct"])  # fmt: skip

    probes = [passing(15.1), erring(0.4), passing(19.7), erring(0.6), passing(17.0), erring(0.5)]
    spread = CapacityResult.of("async", Slo(), probes, "x", 3).as_dict()["spread"]
    assert spread["repeated"] and spread["flipped_rates"] == [] and spread["boundary_repeats"] == 3
    at_capacity, failing = spread["rates"]
    assert at_capacity == {
        "rate": 100,
        "probes": 3,
        "passed": 3,
        "verdict": "passed",
        "figure": "p95_ms",
        "median": 17.0,
        "min": 15.1,
        "max": 19.7,
        "steps": [None, None, None],
    }
    assert (failing["figure"], failing["median"], failing["min"], failing["max"]) == (
        "error_pct",
        0.5,
        0.4,
        0.6,
    )
    assert spread["text"] == (
        "verdicts never flipped: 100/s passed 3 of 3 (p95 17.0 [15.1-19.7] ms); "
        "110/s passed 0 of 3 (errors 0.50 [0.40-0.60] %)"
    )


def test_a_run_from_before_repeats_has_an_unknown_spread():
    probes = [Probe(100, True, figures={"p95_ms": 12.0}), Probe(200, False, ["p95 40 ms"])]
    result = CapacityResult.of("async", Slo(), probes, "x", None)
    assert result.capacity == 100 and not result.spread.repeated
    assert (
        result.spread.text()
        == "unknown: no rate was probed more than once (a run from before boundary repeats)"
    )
    assert "**Spread:** unknown: no rate was probed more than once" in result.markdown()
