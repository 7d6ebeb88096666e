"""What the library tells the outside: decision events and their log lines (``events.py``),
the listeners metrics hang on (``listeners.py``) and the OpenTelemetry instruments
(``otel.py``, public as ``failover_core.otel``)."""
