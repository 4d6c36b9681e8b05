"""The Wan2.1 VAE loader with the real diffusers AutoencoderKLWan on a tiny config saved to tmp_path
(nothing reaches the network: HF_HUB_OFFLINE and local_files_only)."""
import os

os.environ["HF_HUB_OFFLINE"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402

from kairos_ros.model.wan_vae import WanVAECodec, load_wan_vae  # noqa: E402

MEAN = [0.1 * i - 0.8 for i in range(16)]
STD = [0.5 + 0.1 * i for i in range(16)]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    from diffusers import AutoencoderKLWan

    torch.manual_seed(0)
    vae = AutoencoderKLWan(base_dim=8, z_dim=16, dim_mult=[1, 2, 2, 2], num_res_blocks=1,
                           temperal_downsample=[False, True, True], latents_mean=MEAN, latents_std=STD).eval()
    root = tmp_path_factory.mktemp("wan")
    vae.save_pretrained(str(root / "vae"))
    return root, vae


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    import huggingface_hub.constants as c

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)


def frames(h=32, w=48, seed=0):
    return torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_folder_loads_and_normalises_with_the_config_statistics(saved):
    root, ref = saved
    codec = load_wan_vae(str(root / "vae"))
    assert isinstance(codec, WanVAECodec) and codec.channels == 16 and codec.temporal_factor == 4
    x = frames()
    with torch.no_grad():
        z = codec.encode(x)
        raw = ref.encode(x[:, :, None]).latent_dist.mode()
    assert z.shape == (2, 16, 1, 4, 6)
    mean, std = torch.tensor(MEAN).view(1, -1, 1, 1, 1), torch.tensor(STD).view(1, -1, 1, 1, 1)
    assert torch.allclose(z, (raw - mean) / std, atol=1e-5)
    assert torch.allclose(codec.encode(x[:, :, None]), z)  # (B, 3, 1, H, W) is the same frame
    with torch.no_grad():
        back = codec.decode(z)
        direct = ref.decode(z * std + mean).sample.clamp(-1, 1).permute(0, 2, 1, 3, 4)
    assert back.shape == (2, 1, 3, 32, 48) and torch.allclose(back, direct, atol=1e-5)
    assert float(back.abs().max()) <= 1.0


def test_parent_folder_and_single_file(saved):
    root, _ = saved
    x = frames(seed=1)
    with torch.no_grad():
        want = load_wan_vae(str(root / "vae")).encode(x)
        for path in (str(root), str(root / "vae" / "diffusion_pytorch_model.safetensors")):
            assert torch.allclose(load_wan_vae(path).encode(x), want, atol=1e-6), path


def test_future_frames_decode_after_the_history_latent(saved):
    root, _ = saved
    codec = load_wan_vae(str(root / "vae"))
    with torch.no_grad():
        last = codec.encode(frames()[:1])
        future = torch.randn(1, 16, 2, 4, 6, generator=torch.Generator().manual_seed(3))
        out = codec.decode_future(last, future)
        whole = codec.decode(torch.cat([last, future], 2))
    assert codec.pixel_frames(3) == 9 and whole.shape == (1, 9, 3, 32, 48)
    assert out.shape == (1, 8, 3, 32, 48) and torch.allclose(out, whole[:, 1:])


def test_bad_inputs_are_refused(saved, tmp_path):
    root, _ = saved
    codec = load_wan_vae(str(root / "vae"))
    with pytest.raises(ValueError, match="image size 40x32 .* not a multiple of 16"):
        codec.encode(torch.zeros(1, 3, 32, 40))
    with pytest.raises(ValueError, match="one frame per sample"):
        codec.encode(torch.zeros(1, 3, 2, 32, 48))
    with pytest.raises(ValueError, match="parameter 'codec_checkpoint' = '/nonexistent/vae': no such file"):
        load_wan_vae("/nonexistent/vae")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no config.json"):
        load_wan_vae(str(tmp_path / "empty"))
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="not a loadable Wan VAE"):
        load_wan_vae(str(junk))
