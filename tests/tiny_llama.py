"""A tiny random-weight Llama with a tokenizer made here, in seconds: what the fast model tests run.

The tokenizer is a byte-level BPE trained on a few ShopBench-style sentences, with ChatML special
tokens and chat template, so every digit is one token as in SmolLM2. The model is a 2-layer Llama
with hidden size 64. ``save_tiny_llama`` writes both into a folder that loads like any checkpoint.
"""

from __future__ import annotations

from pathlib import Path

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CORPUS = [
    "Which of the following product categories best complement the product type tent?",
    "0. sleeping bag\n1. hair dryer\n2. printer ink\n3. cat litter\nAnswer: ",
    "You are given a numbered list of 10 products. Select 3 products. Output: 1, 2, 3",
    "Rank the products according to their relevance with the query. Output a permutation of 1 to 5.",
    "Extract phrases from the query that correspond to the entity type 'brand'. Output: acme, contoso",
    "Generate a title for the product on a German shopping website. Produkt Titel Schuhe",
    "Evaluate the following product review on a scale of 1 to 5. Great value for money!",
    "You are a helpful online shopping assistant. Answer the question and follow the instructions.",
]


def make_tokenizer():
    """A small byte-level BPE tokenizer with ChatML, built from ``CORPUS`` (deterministic)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    backend.train_from_iterator(CORPUS * 4, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|im_end|>", chat_template=CHATML
    )


def make_tiny_llama(tokenizer, seed: int = 0, initializer_range: float = 0.02):
    """A 2-layer Llama (hidden 64) with random weights, matching ``tokenizer``'s vocabulary.

    With the default initialisation every logit stays near 0 (tiny tied embeddings), so no adapter can
    move the loss far from log(vocabulary); fine-tuning tests use a wider one (e.g. 0.3)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
        bos_token_id=None, eos_token_id=eos, pad_token_id=eos, tie_word_embeddings=True,
        initializer_range=initializer_range,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config).eval()


def save_tiny_llama(folder: Path, initializer_range: float = 0.02) -> Path:
    """Write the tiny Llama and its tokenizer into ``folder`` (loadable with from_pretrained)."""
    tokenizer = make_tokenizer()
    make_tiny_llama(tokenizer, initializer_range=initializer_range).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
