"""The Qwen text-encoder loader with real transformers code: tiny random Qwen2, Qwen3, Qwen3.5 and
Qwen2.5-VL models (AutoModel gives the multimodal ones' base model, fed text only) and a
small byte-level BPE tokenizer built offline with `tokenizers`, saved to tmp_path and loaded through
the loader (HF_HUB_OFFLINE, local_files_only: nothing reaches the network)."""
import os

os.environ["HF_HUB_OFFLINE"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402

from kairos_ros.model.qwen_text import PROMPT_TEMPLATE, load_qwen_text_encoder  # noqa: E402

# A chat template of our own in the usual Qwen shape (system, user, generation prompt).
CHAT = ("{% for m in messages %}<|im_start|> {{ m['role'] }} {{ m['content'] }} <|im_end|> {% endfor %}"
        "{% if add_generation_prompt %}<|im_start|> assistant {% endif %}")
SYSTEM = "describe the robot video in detail"


def build(root, kind: str):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (AutoModel, PreTrainedTokenizerFast, Qwen2_5_VLConfig, Qwen2Config, Qwen3_5Config,
                              Qwen3Config)

    # Byte-level BPE, as the Qwen tokenizers (transformers loads it as their tokenizer class).
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = [PROMPT_TEMPLATE.format(task="pick up the red cube and stack it"), SYSTEM,
              "system user assistant put the cup on the plate"] * 4
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=400, special_tokens=["<pad>", "<|im_start|>",
                                                                                         "<|im_end|>"],
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>")
    fast.chat_template = CHAT
    text = dict(vocab_size=fast.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=4,
                num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=256)
    vision = dict(depth=1, hidden_size=16, num_heads=2, intermediate_size=32, out_hidden_size=32)
    if kind == "qwen3_5":  # the multimodal family of Qwen3.5-2B (kairos-4b-wam), linear-attention layers
        cfg = Qwen3_5Config(text_config=text, vision_config=vision)
    elif kind == "qwen2_5_vl":  # that of Qwen2.5-VL-7B-Instruct (-libero); M-RoPE sections fit head_dim 8
        cfg = Qwen2_5_VLConfig(text_config=dict(text, rope_scaling={"type": "mrope", "mrope_section": [1, 1, 2]}),
                               vision_config=vision)
    else:
        cfg = (Qwen2Config if kind == "qwen2" else Qwen3Config)(**text)
    torch.manual_seed(0)
    model = AutoModel.from_config(cfg).eval()
    path = str(root / kind)
    fast.save_pretrained(path)
    model.save_pretrained(path)
    return path, model, fast


@pytest.fixture(scope="module", params=["qwen2", "qwen3", "qwen3_5", "qwen2_5_vl"])
def saved(request, tmp_path_factory):
    return build(tmp_path_factory.mktemp("qwen"), request.param)


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    import huggingface_hub.constants as c

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)


def test_drops_the_prefix_and_keeps_the_last_hidden_state(saved):
    path, model, tok = saved
    enc = load_qwen_text_encoder(path, drop_tokens=5, system_prompt=SYSTEM)
    assert enc.text_dim == 32
    prompt = enc.prompt("pick up the red cube")
    assert prompt.startswith(f"<|im_start|> system {SYSTEM} <|im_end|>") and prompt.endswith("assistant ")
    assert PROMPT_TEMPLATE.format(task="pick up the red cube") in prompt
    ids = tok(prompt, return_tensors="pt")["input_ids"]
    assert ids.shape[1] > 20 and torch.equal(ids, enc.tokenizer(prompt, return_tensors="pt")["input_ids"])
    with torch.no_grad():
        want = model(input_ids=ids, use_cache=False).last_hidden_state[:, 5:]
    got = enc.encode("pick up the red cube")
    assert got.shape == (1, ids.shape[1] - 5, 32) and torch.allclose(got, want, atol=1e-6)


def test_refuses_a_prompt_shorter_than_the_drop(saved):
    path, _, _ = saved
    enc = load_qwen_text_encoder(path, drop_tokens=97)  # the official count, with no system message
    with pytest.raises(ValueError, match=r"has \d+ tokens, no more than drop_tokens 97"):
        enc.encode("pick up the red cube")


def test_bad_paths_name_the_parameter(tmp_path):
    with pytest.raises(ValueError, match="parameter 'text_checkpoint' = '/nope': no such folder"):
        load_qwen_text_encoder("/nope")
    with pytest.raises(ValueError, match="parameter 'text_checkpoint' = .*: not a loadable Qwen model"):
        load_qwen_text_encoder(str(tmp_path))


def test_the_backend_refuses_a_text_width_the_preset_does_not_take(saved):
    from dataclasses import replace

    from kairos_ros.backends.kairos_loading import load_text
    from kairos_ros.backends.kairos_setup import KairosOptions
    from kairos_ros.model.config import get_preset

    path, _, _ = saved
    opts = KairosOptions(text_checkpoint=path, text_drop_tokens=3)
    with pytest.raises(ValueError, match=r"parameter 'text_checkpoint' = .*: hidden size 32, but 'kairos-nano' takes "
                                         r"text of width 128"):
        load_text(get_preset("kairos-nano"), opts, torch.device("cpu"), torch.float32)
    small = get_preset("kairos-test")
    enc = load_text(replace(small, video=replace(small.video, text_dim=32)), opts, torch.device("cpu"), torch.float32)
    assert enc.drop_tokens == 3 and enc.encode("pick up the red cube").shape[-1] == 32
