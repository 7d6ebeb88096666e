"""Drive a simulator running elsewhere (another process, the CLI) over its control API."""

from __future__ import annotations

from typing import Any

import httpx

from ._faults import Fault, FaultShortcuts

__all__ = ["RemoteSimulator"]


class RemoteSimulator(FaultShortcuts):
    """The same fault and count methods as :class:`ProviderSimulator`, over HTTP.

    Useful when the simulator runs in its own process (``llm-failover-sim``), so that the
    code under test does not share a GIL with the server.
    """

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout)

    @property
    def openai_base_url(self) -> str:
        return f"{self.base_url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.base_url

    def _post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self._client.post(path, json=body or {})
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def fail(self, model: str, status: int = 503, **options: Any) -> Fault:
        fault = Fault(status=status, **options)  # validated here, before it is sent
        self._post("/_sim/faults", {"model": model, **fault.to_dict()})
        return fault

    def set_latency(
        self,
        model: str,
        seconds: float,
        chunk_delay: float = 0.0,
        *,
        p99: float | None = None,
        seed: int | None = None,
    ) -> None:
        body = {"model": model, "seconds": seconds, "chunk_delay": chunk_delay}
        self._post("/_sim/latency", {**body, "p99": p99, "seed": seed})

    def set_rate_limit(
        self, model: str, requests: int, *, tokens: int | None = None, window: float = 60.0
    ) -> None:
        body = {"model": model, "requests": requests, "tokens": tokens, "window": window}
        self._post("/_sim/ratelimit", body)

    def rate_limited(self, model: str | None = None) -> int:
        """Requests answered 429 by a rate limit (not by a planned fault)."""
        response = self._client.get("/_sim/state")
        response.raise_for_status()
        counts: dict[str, int] = response.json().get("rate_limited", {})
        return counts.get(model, 0) if model is not None else sum(counts.values())

    def clear(self, model: str | None = None) -> None:
        self._post("/_sim/clear", {"model": model} if model else {})

    def reset(self) -> None:
        self._post("/_sim/reset")

    def call_counts(self) -> dict[str, int]:
        response = self._client.get("/_sim/state")
        response.raise_for_status()
        counts: dict[str, int] = response.json()["calls"]
        return counts

    def calls(self, model: str | None = None) -> int:
        counts = self.call_counts()
        return counts.get(model, 0) if model is not None else sum(counts.values())

    def disconnects(self, model: str | None = None) -> int:
        response = self._client.get("/_sim/state")
        response.raise_for_status()
        counts: dict[str, int] = response.json()["disconnects"]
        return counts.get(model, 0) if model is not None else sum(counts.values())

    def close(self) -> None:
        self._client.close()
