"""An event's ``benched_for`` is the bench the registry made, not the base cooldown.

A failed probe benches a model again for a grown cooldown; observers (the demo's decision
line among them) read how long from the event and must not be told the base cooldown.
"""

from __future__ import annotations

from datetime import timedelta

import failover_core as fc
from tests.conftest import FakeClock
from tests.core.fakes import HTTPError


def test_a_failed_probe_reports_the_grown_cooldown(
    registry: fc.HealthRegistry, clock: FakeClock
) -> None:
    events: list[fc.FailoverEvent] = []
    policy = fc.FailoverPolicy.build(
        max_retries=1, transient_cooldown=8, cooldown=300, observer=events.append
    )

    def fail_once() -> None:
        flow = fc.FailoverFlow(("a/1", "b/2"), policy, registry)
        flow.start()
        flow.failed(HTTPError(503))

    fail_once()
    clock.advance(8.5)  # the bench is over: the next request is the probe
    fail_once()
    assert [e.benched_for for e in events] == [timedelta(seconds=8), timedelta(seconds=16)]
    assert [b.until.timestamp() - clock() for b in fc.list_benched()] == [16.0]
