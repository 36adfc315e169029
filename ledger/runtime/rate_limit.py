"""A request rate limit as configured: "<requests per second>/<burst>", or "0" for none.

One grammar, read by the settings (so a typo stops start-up, naming its variable) and by the API's
rate limiter (`graphql_api.edge.rate_limits`)."""

from __future__ import annotations

from dataclasses import dataclass

from ledger.core import bounds


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
        outside 0.001 to 1,000,000 per second, a burst outside 1 to 1,000,000) is a ValueError."""
        if text.strip() == "0":
            return cls(0, 0)
        rate, burst = text.split("/")  # ValueError unless exactly one "/"
        limit = cls(float(rate), int(burst))
        rate_ok = bounds.RATE_LIMIT_PER_SECOND_MIN <= limit.per_second <= bounds.RATE_LIMIT_PER_SECOND_MAX
        if not rate_ok or not 1 <= limit.burst <= bounds.RATE_LIMIT_BURST_MAX:
            raise ValueError(text)
        return limit
