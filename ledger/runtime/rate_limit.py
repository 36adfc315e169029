"""A request rate limit as configured: "<requests per second>/<burst>", or "0" for none.

One grammar, read by the settings (so a typo stops start-up, naming its variable) and by the API's
rate limiter (`graphql_api.edge.rate_limits`)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RateLimit:
    per_second: float
    burst: int

    @property
    def enabled(self) -> bool:
        return self.per_second > 0 and self.burst > 0

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        """ "200/400" is 200 per second with bursts of 400; "0" is no limit. Anything else (a rate
        that is not a positive finite number, a burst that is not a positive whole number) is a
        ValueError."""
        if text.strip() == "0":
            return cls(0, 0)
        rate, burst = text.split("/")  # ValueError unless exactly one "/"
        limit = cls(float(rate), int(burst))
        if not math.isfinite(limit.per_second) or not limit.enabled:
            raise ValueError(text)
        return limit
