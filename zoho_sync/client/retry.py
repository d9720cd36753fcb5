"""The retry policy: which failures are tried again, and how long to wait, within a cap and a total deadline.

Pure and injectable (random source in, seconds out), so tests and the property test run at full speed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from zoho_sync.client.errors import ZohoError, ZohoRateLimitError


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    deadline: float = 180.0  # seconds for one call, all attempts and waits included
    lockout_wait: float = 60.0  # code 44: Zoho locks the organization out; wait it out once, then probe (§12.2)
    concurrency_wait: tuple[float, float] = (1.0, 5.0)  # code 1070: back off 1-5 s with jitter (§12.2)

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based): full jitter under a capped exponential."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** max(0, attempt - 1)))
        return rng.uniform(0, ceiling)

    def wait_for(self, error: ZohoError, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before retrying after `error`; Retry-After, when sent, is a floor."""
        delay = self.backoff(attempt, rng)
        if isinstance(error, ZohoRateLimitError):
            if error.is_lockout:
                delay = self.lockout_wait
            elif error.is_concurrency:
                delay = rng.uniform(*self.concurrency_wait)
        if error.retry_after is not None:
            delay = max(delay, error.retry_after)
        return delay

    def schedule(self, rng: random.Random) -> list[float]:
        """The waits one call may make between its attempts, cut where the deadline would be passed."""
        waits: list[float] = []
        for attempt in range(1, self.max_attempts):
            wait = self.backoff(attempt, rng)
            if sum(waits) + wait > self.deadline:
                break
            waits.append(wait)
        return waits
