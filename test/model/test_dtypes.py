"""bfloat16 (the released pipeline's dtype) runs every forward and stays close to float32; the
samplers keep the chunk in float32 whatever the model's dtype."""
import torch

from kairos_ros.model.config import get_preset
from kairos_ros.model.sampler import sample_actions
from kairos_ros.model.wam import KairosWAM
from kairos_ros.model.world_state import WorldState


def test_bfloat16_matches_float32_closely():
    torch.manual_seed(0)
    m32 = KairosWAM(get_preset("kairos-test")).eval()
    for p in m32.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    m16 = KairosWAM(get_preset("kairos-test")).eval()
    m16.load_state_dict(m32.state_dict())
    m16 = m16.to(torch.bfloat16)
    lat, text, state = torch.randn(1, 16, 3, 4, 6), torch.randn(1, 3, 16), torch.randn(1, 6)
    x = torch.randn(1, 5, 6)
    res = {}
    with torch.no_grad():
        for m, dt in ((m32, torch.float32), (m16, torch.bfloat16)):
            ctx, cm = m.context(text.to(dt), state.to(dt))
            cache, _ = m.encode_history(lat.to(dt), ctx, cm)
            world = WorldState()
            for n in range(3):
                streamed, _ = m.stream_step(lat[:, :, n:n + 1].to(dt), ctx, cm, world)
            res[dt] = (m.action_velocity(x, 812.5, cache, ctx, cm),
                       m.joint_forward(lat.to(dt), torch.tensor([300.0]), 1, x, 500.0, ctx, cm)["pred_video"],
                       sample_actions(m, streamed, ctx, cm, 5, 3, generator=torch.Generator().manual_seed(0)))
    assert res[torch.bfloat16][2].dtype == torch.float32
    for a, b in zip(res[torch.float32], res[torch.bfloat16]):
        assert (a - b.float()).abs().max() < 0.03 * a.abs().max()
