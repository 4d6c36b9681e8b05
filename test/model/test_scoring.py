"""The candidate-consistency score: the flow-matching denoising error under the action expert."""
import torch

from kairos_ros.model.config import get_preset
from kairos_ros.model.scoring import SCORE_SIGMAS, denoising_error
from kairos_ros.model.wam import KairosWAM


def setup(zero_head: bool):
    torch.manual_seed(0)
    m = KairosWAM(get_preset("kairos-test")).eval()
    if zero_head:  # the expert then predicts velocity 0 for any input: the error has a closed form
        with torch.no_grad():
            m.action_dit.head.weight.zero_()
            m.action_dit.head.bias.zero_()
    with torch.no_grad():
        ctx, cm = m.context(torch.randn(1, 3, 16), torch.randn(1, 6))
        cache, _ = m.encode_history(torch.randn(1, 16, 1, 4, 4), ctx, cm)
    return m, cache, ctx, cm


def test_zero_velocity_gives_the_target_energy():
    m, cache, ctx, cm = setup(zero_head=True)
    a = torch.randn(1, 5, 6, generator=torch.Generator().manual_seed(9))
    gen = torch.Generator().manual_seed(3)
    expect = sum(((torch.randn(a.shape, generator=gen) - a) ** 2).mean() for _ in SCORE_SIGMAS) / len(SCORE_SIGMAS)
    assert torch.allclose(denoising_error(m, cache, ctx, cm, a, seed=3), expect.view(1), rtol=1e-5)


def test_scores_are_reproducible_and_rank_candidates():
    m, cache, ctx, cm = setup(zero_head=False)
    a = torch.randn(1, 5, 6, generator=torch.Generator().manual_seed(1))
    e1, e2 = (denoising_error(m, cache, ctx, cm, a) for _ in range(2))
    assert torch.equal(e1, e2) and e1.shape == (1,) and float(e1) > 0
    far = denoising_error(m, cache, ctx, cm, a + 10.0)
    assert float(far) > float(e1)  # the target e - a grows with a; the expert's velocity stays bounded
