"""``reset_hedging()``: a public fresh start for hedging (the notebook used a private module)."""

from __future__ import annotations

import failover_core as fc
from failover_core.flow.hedging import get_hedging


def test_reset_hedging_forgets_latencies_and_counts_but_keeps_the_budget_settings() -> None:
    fc.set_hedge_budget(fc.HedgeBudget(share=0.05, window=30))
    tracker = get_hedging().tracker
    tracker.record("a/1", True, 0.5)
    fc.reset_hedging()
    fresh = get_hedging()
    assert fresh.tracker is not tracker and fresh.tracker.size == tracker.size
    budget = fc.get_hedge_budget()
    assert (budget.share, budget.window) == (0.05, 30)
    assert "reset_hedging" in fc.__all__
