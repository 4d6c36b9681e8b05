"""core.rate.PublishRateLimiter: the perception publish rule with the clock passed in (no node, no sleeps)."""
import pytest

from kairos_ros.core.rate import MARGIN, PublishRateLimiter


def test_first_input_publishes_then_the_limit_holds_and_lifts():
    lim = PublishRateLimiter(10.0)
    d = lim.decide(100.0)
    assert d.publish and not d.clock_jumped
    lim.published(100.0)
    d = lim.decide(100.03)
    assert not d.publish and d.wait == pytest.approx(MARGIN * 0.1 - 0.03)
    assert lim.decide(100.0 + MARGIN * 0.1).publish  # exactly when the limit lifts


def test_a_source_at_exactly_the_rate_is_never_throttled_by_jitter():
    lim, sent, t = PublishRateLimiter(10.0), 0, 50.0
    for i in range(100):
        now = t + 0.1 * i + (0.004 if i % 2 else -0.004)  # +-4 ms jitter around 10 Hz
        if lim.decide(now).publish:
            lim.published(now)
            sent += 1
    assert sent == 100


def test_a_fast_source_is_limited_and_the_held_back_set_is_flushed():
    """Inputs at 100 Hz into a 10 Hz limit: one publish per 0.09 s at most; between inputs, the
    flush the caller arms for `wait` seconds publishes the held-back set when the limit lifts."""
    lim, publishes, flush_at = PublishRateLimiter(10.0), [], None
    for i in range(100):
        now = 10.0 + 0.01 * i
        if flush_at is not None and now >= flush_at:
            fired, flush_at = flush_at, None  # the one-shot timer fired before this input
            if lim.decide(fired).publish:
                lim.published(fired)
                publishes.append(fired)
        d = lim.decide(now)
        if d.publish:
            lim.published(now)
            publishes.append(now)
        elif flush_at is None:
            flush_at = now + d.wait
    gaps = [b - a for a, b in zip(publishes, publishes[1:])]
    assert min(gaps) >= MARGIN * 0.1 - 1e-9
    assert 9 <= len(publishes) <= 12


def test_a_clock_going_backwards_restarts_the_limiter_and_says_so():
    lim = PublishRateLimiter(10.0)
    lim.published(100.0)
    d = lim.decide(20.0)  # sim time restarted (a looping bag)
    assert d.publish and d.clock_jumped
    lim.published(20.0)
    assert not lim.decide(20.01).clock_jumped


def test_reset_forgets_the_last_publish():
    lim = PublishRateLimiter(2.0)
    lim.published(5.0)
    assert not lim.due(5.1)
    lim.reset()
    assert lim.due(5.1)


@pytest.mark.parametrize("rate", [0.0, -1.0, float("nan")])
def test_bad_rate_is_refused_naming_it(rate):
    with pytest.raises(ValueError, match="rate_hz"):
        PublishRateLimiter(rate)
