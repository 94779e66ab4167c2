"""How a ShopBench prompt becomes the text a model reads: one function for inference and training.

``TransformersModel`` formats every prompt with ``format_prompt`` and fine-tuning builds its training
examples with the same function, so the two cannot drift apart; a served model sends
``chat_messages`` to a chat endpoint (the server applies the template).
"""

from __future__ import annotations

from typing import Any


def chat_messages(prompt: str, system_prompt: str) -> list[dict[str, str]]:
    """The chat turns for one prompt: the system prompt (when there is one), then the prompt as the user."""
    messages = [{"role": "user", "content": prompt}]
    if system_prompt:
        messages.insert(0, {"role": "system", "content": system_prompt})
    return messages


def format_prompt(tokenizer: Any, prompt: str, system_prompt: str, use_chat_template: bool) -> str:
    """The text the model reads: the tokenizer's chat template with the system prompt and the assistant's
    turn opened, or (without a chat template) the system prompt and the prompt joined."""
    if not use_chat_template:
        return system_prompt + prompt
    return tokenizer.apply_chat_template(chat_messages(prompt, system_prompt), tokenize=False,
                                         add_generation_prompt=True)
