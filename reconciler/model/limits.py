"""The bounds every value in a document must keep, so that what validates can be applied.

A value the validator accepts must survive the change engine, both store backends and the
SDKs that read the flags; these are the tightest of their limits:

- Integers anywhere in a document (payloads, property values, condition values) lie within
  ±(2^53 - 1): JavaScript SDKs read JSON numbers as doubles and hold no larger integer exactly.
  Numbers must be finite: JSON has no NaN or Infinity.
- Ids, versions, indexes and counts (`environments[].id`, `base_version`, group indexes,
  `quorum`) lie within 0 to 2^31 - 1: the store keeps them in PostgreSQL `integer` columns.
- Durations (`expires_after`) are at most ten years.
- Text holds no NUL character: PostgreSQL `text` columns cannot store one.

`documents.py` and `flags.py` put these bounds into the models (and so into `schemas/`),
`schema.py` enforces the JSON-safe bound and the NUL rule on every value of a document,
`durations.py` the cap.
"""

from __future__ import annotations

from datetime import timedelta

MAX_SAFE_INTEGER = 2**53 - 1
MAX_STORE_INTEGER = 2**31 - 1
MAX_DURATION = timedelta(days=3650)
MAX_DURATION_TEXT = f"{MAX_DURATION.days}d ({MAX_DURATION.days // 365} years)"
