"""The 4B presets' text encoder: a Qwen model through transformers, from a local folder only.

What the Kairos pipeline feeds the DiT: the instruction is put into the prompt template
"A video recorded from a robot's point of view executing the following instruction: {task}",
wrapped in the tokenizer's chat template (a system message, the user message, the generation
prompt), and the model's last hidden state is kept from token `drop_tokens` on (97 in the
official pipeline: the tokens of its chat-template prefix and system message, which the DiT
never sees). The official system message is the pipeline's own text and is not shipped here:
pass the one the checkpoint was trained with as `system_prompt`, or the encoder keeps whatever
follows the first `drop_tokens` tokens of your prompt. A prompt no longer than drop_tokens is
refused (it would leave no token).

Qwen2.5-VL-7B-Instruct (3584 wide) and Qwen3.5-2B (2048) are multimodal checkpoints;
`AutoModel` loads their base model, which takes text-only input_ids.
"""
from __future__ import annotations

import os

import torch
from torch import nn

PROMPT_TEMPLATE = "A video recorded from a robot's point of view executing the following instruction: {task}"
DROP_TOKENS = 97


def hidden_size(config) -> int:
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return int(text.hidden_size)


class QwenTextEncoder(nn.Module):
    def __init__(self, model, tokenizer, drop_tokens: int = DROP_TOKENS, system_prompt: str = "",
                 template: str = PROMPT_TEMPLATE, max_tokens: int = 1024):
        super().__init__()
        if drop_tokens < 0:
            raise ValueError(f"drop_tokens = {drop_tokens} must be >= 0")
        self.model, self.tokenizer = model, tokenizer
        self.drop_tokens, self.system_prompt, self.template, self.max_tokens = drop_tokens, system_prompt, \
            template, max_tokens
        self.text_dim = hidden_size(model.config)

    def prompt(self, task: str) -> str:
        """The text the tokenizer sees: the template in the chat format when the tokenizer has one."""
        user = self.template.format(task=task)
        if not getattr(self.tokenizer, "chat_template", None):
            return user
        messages = ([{"role": "system", "content": self.system_prompt}] if self.system_prompt else []) + [
            {"role": "user", "content": user}]
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def encode(self, text: str) -> torch.Tensor:
        ids = self.tokenizer(self.prompt(text), return_tensors="pt", truncation=True,
                             max_length=self.max_tokens)["input_ids"]
        if ids.shape[1] <= self.drop_tokens:
            raise ValueError(f"the prompt for {text!r} has {ids.shape[1]} tokens, no more than drop_tokens "
                             f"{self.drop_tokens}: nothing would be left (set the system prompt the checkpoint "
                             "was trained with, or a smaller drop count)")
        device = next(self.model.parameters()).device
        with torch.inference_mode():
            out = self.model(input_ids=ids.to(device), use_cache=False)  # one pass, no generation cache
        return out.last_hidden_state[:, self.drop_tokens:].float()  # (1, L - drop, hidden)


def load_qwen_text_encoder(path: str, device="cpu", dtype: torch.dtype = torch.float32,
                           drop_tokens: int = DROP_TOKENS, system_prompt: str = "",
                           param: str = "text_checkpoint") -> QwenTextEncoder:
    """AutoModel + AutoTokenizer from a local folder (local_files_only); ValueError naming `param`."""
    from transformers import AutoModel, AutoTokenizer

    if not path or not os.path.isdir(path):
        raise ValueError(f"parameter '{param}' = '{path}': no such folder (a local Qwen model folder with "
                         "config.json, tokenizer and weights)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModel.from_pretrained(path, local_files_only=True, dtype=dtype)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ValueError(f"parameter '{param}' = '{path}': not a loadable Qwen model ({type(exc).__name__}: "
                         f"{exc})") from exc
    return QwenTextEncoder(model.eval().to(device), tokenizer, drop_tokens, system_prompt)
