"""Rate and ETA of a re-index: a smoothed rows-per-second and lag divided by it (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RateMeter:
    """Exponentially smoothed rows/s over batches; ``alpha`` weighs the newest batch."""

    alpha: float = 0.2
    rate: float | None = field(default=None, init=False)

    def observe(self, rows: int, seconds: float) -> float | None:
        if seconds <= 0:
            return self.rate
        now = rows / seconds
        self.rate = now if self.rate is None else self.alpha * now + (1 - self.alpha) * self.rate
        return self.rate


def eta_seconds(lag: int, rate: float | None) -> float | None:
    """Seconds until ``lag`` records are done at ``rate``; 0 with nothing left, None while the rate is unknown."""
    if lag <= 0:
        return 0.0
    if not rate or rate <= 0:
        return None
    return lag / rate
