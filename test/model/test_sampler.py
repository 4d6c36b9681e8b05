"""Flow-matching samplers against a velocity field whose exact answer is known."""
import pytest
import torch

from kairos_ros.model.config import get_preset
from kairos_ros.model.sampler import distilled_sample, euler_sample, sample_actions, shifted_sigmas
from kairos_ros.model.wam import KairosWAM

X0 = torch.tensor([[0.3, -1.2, 2.0]])


def oracle(x, t):
    """The exact velocity noise - x0 for the straight path through X0."""
    sigma = (t / 1000.0).to(x.dtype)[:, None]
    return (x - X0) / sigma.clamp_min(1e-12)


def test_shifted_schedule():
    s = shifted_sigmas(10, 5.0)
    assert s[0] == 1.0 and s[-1] == 0.0 and torch.all(s[1:] < s[:-1])
    assert s[5] == pytest.approx(5 * 0.5 / (1 + 4 * 0.5))
    with pytest.raises(ValueError, match="steps = 0"):
        shifted_sigmas(0, 5.0)


@pytest.mark.parametrize("steps,shift", [(1, 1.0), (10, 5.0), (30, 3.0)])
def test_euler_reaches_x0_on_straight_paths(steps, shift):
    noise = torch.randn(1, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = euler_sample(oracle, noise, steps, shift)
    assert torch.allclose(out, X0.double(), atol=1e-9)


def test_distilled_predicts_x0():
    noise = torch.randn(1, 3, generator=torch.Generator().manual_seed(1))
    out = distilled_sample(oracle, noise, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(out, X0, atol=1e-5)


def test_sample_actions_shape_and_determinism():
    torch.manual_seed(0)
    model = KairosWAM(get_preset("kairos-test")).eval()
    cfg = model.cfg
    lat = torch.randn(1, 16, 2, 4, 4)
    with torch.no_grad():
        ctx, cm = model.context(torch.randn(1, 3, cfg.video.text_dim), torch.randn(1, cfg.action.state_dim))
        cache, _ = model.encode_history(lat, ctx, cm)
        a = sample_actions(model, cache, ctx, cm, 6, steps=4, generator=torch.Generator().manual_seed(3))
        b = sample_actions(model, cache, ctx, cm, 6, steps=4, generator=torch.Generator().manual_seed(3))
    assert a.shape == (1, 6, cfg.action.action_dim) and torch.equal(a, b) and torch.all(torch.isfinite(a))
