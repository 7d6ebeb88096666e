"""Run the simulator on a loopback port in a background thread (uvicorn)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

from ._app import build_app
from ._faults import Fault, FaultShortcuts, RecordedRequest, SimulatorState

__all__ = ["ProviderSimulator"]


class ProviderSimulator(FaultShortcuts):
    """A fault-injecting OpenAI + Anthropic server on ``127.0.0.1``.

    >>> with ProviderSimulator() as sim:                          # doctest: +SKIP
    ...     sim.fail("gpt-4o-mini", status=503, times=None)
    ...     client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sim")

    Point OpenAI clients at :attr:`openai_base_url` and Anthropic clients at
    :attr:`anthropic_base_url`; any API key is accepted (and never recorded).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = SimulatorState()
        self._host, self._port = host, port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> ProviderSimulator:
        if self._server is not None:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit this: no Nagle delay between a response's head and body.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((self._host, self._port))
        sock.listen(512)
        self._socket = sock
        config = uvicorn.Config(
            build_app(self.state),
            log_level="critical",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
            timeout_keep_alive=30,
        )
        # Planned disconnects raise inside the app on purpose; keep them out of the logs.
        logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [sock]},
            name="llm-failover-sim",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the provider simulator did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> ProviderSimulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses ----------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._socket is None:
            raise RuntimeError("the simulator is not running")
        port: int = self._socket.getsockname()[1]
        return port

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """For ``openai.OpenAI(base_url=...)``, ``ChatOpenAI(base_url=...)``, llama-index
        ``OpenAI(api_base=...)``."""
        return f"{self.base_url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """For ``anthropic.Anthropic(base_url=...)`` and ``ChatAnthropic(base_url=...)``."""
        return self.base_url

    # -- faults and records -------------------------------------------------------------

    def fail(self, model: str, status: int = 503, **options: Any) -> Fault:
        """Plan a failure for ``model`` (``"*"``: any model); see :class:`Fault` for options.

        Faults queue per model: each applies ``times`` times (``times=None``: until cleared).
        """
        fault = Fault(status=status, **options)
        self.state.add_fault(model, fault)
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
        """Delay every answer from ``model`` (``"*"``: any model), and each streamed chunk.

        With ``p99``, each answer's delay is drawn from a heavy-tailed (log-normal)
        distribution with median ``seconds`` and 99th percentile ``p99``.
        """
        self.state.set_latency(model, seconds, chunk_delay, p99=p99, seed=seed)

    def set_rate_limit(
        self, model: str, requests: int, *, tokens: int | None = None, window: float = 60.0
    ) -> None:
        """Let ``model`` take ``requests`` requests (and ``tokens`` tokens) per ``window``
        seconds: every answer says what is left in the provider's rate-limit headers, and
        a request over the limit gets a 429 with ``retry-after``."""
        self.state.rate_limits.set(model, requests, tokens, window)

    def rate_limited(self, model: str | None = None) -> int:
        """Requests answered 429 by a rate limit (not by a planned fault)."""
        counts = self.state.rate_limits.limited
        return counts[model] if model is not None else sum(counts.values())

    def set_prefill(self, model: str, mode: str | None) -> None:
        """``model`` continues (``"continue"``) or rejects (``"reject"``, a 400) a final
        assistant message on the OpenAI wire; ``None``: answers it as a new turn."""
        self.state.set_prefill(model, mode)

    def clear(self, model: str | None = None) -> None:
        """Heal ``model`` (or every model): its planned faults are dropped."""
        self.state.clear(model)

    def reset(self) -> None:
        """Faults, latencies, call counts and recorded requests all forgotten."""
        self.state.reset()

    def disconnects(self, model: str | None = None) -> int:
        """Clients that closed a request while ``model`` hung or stalled."""
        return self.state.disconnects(model)

    def calls(self, model: str | None = None) -> int:
        """Requests received for ``model`` (or in all), failed ones included."""
        return self.state.calls(model)

    def requests(self, model: str | None = None) -> list[RecordedRequest]:
        """The request bodies received, oldest first."""
        return self.state.requests(model)
