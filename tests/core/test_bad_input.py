"""Bad input answered with one clear line, nothing applied (issue 24 item 9, issue 27 item 7):
the simulator's command line and control endpoints, and option values."""

from __future__ import annotations

import math
import subprocess
import sys
from dataclasses import fields
from typing import Any

import httpx
import pytest

import failover_core as fc
from failover_core.simulator import Fault, ProviderSimulator


def sim_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "failover_core.simulator", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--port", "-1"), "a port is 0 to 65535"),
        (("--port", "65536"), "a port is 0 to 65535"),
        (("--latency", "m=-1"), "must not be negative"),
        (("--latency", "m=nan"), "finite"),
        (("--host", "256.1.1.1"), "not an IP address"),
        (("--fail", "m=503,times=1.5"), "bad fault"),
        (("--fail", "m=503,latency=nan"), "finite"),
    ],
)
def test_the_simulator_cli_refuses_bad_arguments_in_one_line(
    args: tuple[str, ...], said: str
) -> None:
    out = sim_cli(*args)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert said in out.stderr


def test_the_simulator_help_lists_every_fault_field() -> None:
    helped = sim_cli("--help").stdout
    for f in fields(Fault):
        assert f"  {f.name}" in helped, f.name


def test_an_unknown_fault_field_is_named_with_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="tims") as caught:
        Fault.from_dict({"tims": 2})
    assert "times" in str(caught.value).split("tims", 1)[1]
    out = sim_cli("--fail", "m=503,tims=2")
    assert out.returncode == 2 and "times" in out.stderr.split("tims", 1)[1]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/_sim/faults", b"not json"),
        ("/_sim/faults", b"null"),
        ("/_sim/faults", b"[]"),
        ("/_sim/faults", b'"text"'),
        ("/_sim/faults", b'{"model": "m", "times": 1.5}'),
        ("/_sim/faults", b'{"model": "m", "latency": NaN}'),
        ("/_sim/faults", b'{"model": "m", "times": true}'),
        ("/_sim/faults", b'{"model": "m", "status": "503"}'),
        ("/_sim/faults", b'{"model": null}'),
        ("/_sim/faults", b'{"status": 503}'),
        ("/_sim/latency", b"not json"),
        ("/_sim/latency", b"null"),
        ("/_sim/latency", b"[]"),
        ("/_sim/latency", b'{"model": "m", "seconds": NaN}'),
        ("/_sim/latency", b'{"model": "m", "seconds": 1e999}'),
        ("/_sim/latency", b'{"model": "m", "seconds": "1"}'),
        ("/_sim/latency", b'{"model": "m", "seconds": 1, "seed": 1.5}'),
        ("/_sim/clear", b"[1]"),
        ("/_sim/clear", b"nope"),
    ],
)
def test_the_control_endpoints_answer_400_to_a_bad_body_and_apply_nothing(
    provider_sim: ProviderSimulator, path: str, body: bytes
) -> None:
    before = httpx.get(provider_sim.base_url + "/_sim/state").json()
    answer = httpx.post(provider_sim.base_url + path, content=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]
    state = httpx.get(provider_sim.base_url + "/_sim/state")
    assert state.status_code == 200 and state.json() == before


# -- option values ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ({"timeout": 1e-300}, "at least 1 ms"),
        ({"first_token_timeout": 0.0001}, "at least 1 ms"),
        ({"idle_timeout": "0.0005s"}, "at least 1 ms"),
        ({"hedge_after": 10**400}, "hedge_after"),
        ({"hedge_after": 1e300}, "hedge_after"),
        ({"hedge_after": math.nan}, "hedge_after"),
    ],
)
def test_deadlines_and_hedge_delays_out_of_range_are_refused_clearly(
    options: dict[str, Any], said: str
) -> None:
    with pytest.raises(ValueError, match=said):
        fc.FailoverPolicy.build(**options)
    with pytest.raises(ValueError, match=said):
        fc.set_failover_defaults(**options)
    assert fc.FailoverPolicy.build().timeout != 0
