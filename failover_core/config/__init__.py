"""What a user configures: the per-chain policy and process defaults (``policy.py``),
durations (``durations.py``), constructor-option checks (``options.py``), chains from spec
strings (``specs.py``) and the check for children that retry on their own
(``sdk_retries.py``)."""
