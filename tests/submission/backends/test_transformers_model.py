"""The transformers baseline on a tiny random Llama: answers parse, order holds, 4/8-bit and LoRA load."""

from __future__ import annotations

import pytest
import torch

from submission.backends.task_inference import integers_in, listed_ids, mc_choices, shape_output
from submission.backends.transformers import TransformersModel
from submission.scoring.parsers import parse

MC_PROMPTS = [
    "Which of the following product categories best complement the product type tent?\n"
    "0. sleeping bag\n1. hair dryer\n2. printer ink\n3. cat litter\nAnswer: ",
    "Which product is waterproof?\n0. paper bag\n1. rain coat\nAnswer: ",
    "Instructions: Evaluate the following product review on a scale of 1 to 5, with 1 being very negative "
    "and 5 being very positive.\nInput: Great value for money, works as described and arrived early.\n"
    "Output:\nAnswer: ",
    "Which of the following statements best describes the relation from query 'tent' to query "
    "'tent pegs'?\n0. irrelevant\n1. substitute\n2. complement\n3. narrowing\nAnswer: ",
]
RETRIEVAL_PROMPT = (
    "A user has just purchased a product 'Camping tent for 4 people'. The following numbered list contains "
    "{n} products. Please select 3 products from the list that the user may also purchase.\nProduct List: \n"
    "{items}\nYou should output 3 numbers that correspond to the selected products. Output: "
)
RANKING_PROMPT = (
    "A user has made a query with keyword 'tent'. Given the following numbered list of 5 products, please "
    "rank the products according their relevance with the query.\nProduct List: \n{items}\n"
    "You should output a permutation of 1 to 5. Output: "
)
NER_PROMPT = (
    "A customer has made the following query. Please extract phrases from the query that correspond to the "
    "entity type 'brand'. Query: acme tent 4 person\nOutput: "
)
GENERATION_PROMPT = "Instructions: Explain the product category name\nInput: Tent\nOutput:"
SMALL_BUDGET = {"retrieval": 6, "ranking": 8, "ner": 6, "generation": 6}


def numbered(n: int) -> str:
    return "\n".join(f"{i}. product number {i} for the outdoors" for i in range(1, n + 1))


OPEN_PROMPTS = [
    RETRIEVAL_PROMPT.format(n=10, items=numbered(10)),
    RANKING_PROMPT.format(items=numbered(5)),
    NER_PROMPT,
    GENERATION_PROMPT,
    RETRIEVAL_PROMPT.format(n=15, items=numbered(15)),
    RANKING_PROMPT.format(items=numbered(5)).replace("tent", "camping stove"),
]


@pytest.fixture(scope="module")
def tiny(tiny_llama_dir) -> TransformersModel:
    return TransformersModel(weights=str(tiny_llama_dir), max_new_tokens=SMALL_BUDGET)


def test_multiple_choice_answers_are_one_digit_among_the_choices(tiny):
    answers = tiny.batch_predict({"prompt": MC_PROMPTS * 3}, is_multiple_choice=True)
    assert len(answers) == len(MC_PROMPTS) * 3
    for prompt, answer in zip(MC_PROMPTS * 3, answers, strict=True):
        assert len(answer) == 1 and int(answer) in mc_choices(prompt)
        assert not parse("multiple-choice", answer).failed


def test_multiple_choice_never_calls_generate(tiny, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("multiple choice must not call generate")

    monkeypatch.setattr(tiny.model, "generate", refuse)
    assert len(tiny.batch_predict({"prompt": MC_PROMPTS}, is_multiple_choice=True)) == len(MC_PROMPTS)


def test_multiple_choice_takes_the_argmax_over_choice_tokens(tiny):
    sequences = tiny.encode(MC_PROMPTS)
    logits = tiny.last_logits(sequences)
    answers = tiny.answer_multiple_choice(MC_PROMPTS)
    for prompt, row_logits, answer in zip(MC_PROMPTS, logits, answers, strict=True):
        scores = {c: row_logits[tiny.choice_tokens(c)].max().item() for c in mc_choices(prompt)}
        assert int(answer) == max(scores, key=scores.get)


def test_retrieval_and_ranking_outputs_parse_to_valid_ids(tiny):
    answers = tiny.batch_predict({"prompt": OPEN_PROMPTS}, is_multiple_choice=False)
    for prompt, answer in zip(OPEN_PROMPTS, answers, strict=True):
        if "rank the products" in prompt:
            parsed = parse("ranking", answer)
            assert sorted(parsed.value) == listed_ids(prompt) == [1, 2, 3, 4, 5]
        elif "select 3" in prompt:
            parsed = parse("retrieval", answer)
            assert len(parsed.value) == len(set(parsed.value)) == 3
            assert set(parsed.value) <= set(listed_ids(prompt))
        else:
            assert isinstance(answer, str)


def _order_prompts() -> tuple[list[str], list[str]]:
    """Prompts of lengths that sorting reorders; each one's answer differs from the others'."""
    filler = "This product is sold online. "
    names = ["tent", "stove", "lamp", "kettle", "mat", "rope"]
    repeats = (6, 3, 9, 1, 12, 4)
    multiple_choice = [  # lengths close enough to share forward passes under mc_length_ratio
        f"{filler * repeat}Rate it on a scale of 0 to 9. Answer for the {name}"
        for name, repeat in zip(names, (14, 12, 16, 11, 17, 13), strict=True)
    ]
    generation = [f"{filler * repeat}Describe the {name}" for name, repeat in zip(names, repeats, strict=True)]
    ids = [
        f"{filler * repeat}Please select 3 products.\n{numbered_from(start, 10)}\nOutput: "
        for start, repeat in ((1, 8), (21, 1), (41, 5))
    ]
    return multiple_choice, generation + ids


def numbered_from(start: int, n: int) -> str:
    return "\n".join(f"{i}. product {i}" for i in range(start, start + n))


def test_order_is_preserved_after_length_sorting(tiny_llama_dir):
    # A small token budget per forward pass forces several sorted chunks per batch, some of them out of
    # data order. Without the chat template each prompt's last tokens differ, and so do the random
    # model's answers: any mix-up shows.
    model = TransformersModel(weights=str(tiny_llama_dir), max_new_tokens=SMALL_BUDGET, max_batch_tokens=500,
                              use_chat_template=False, system_prompt="")
    multiple_choice, open_ended = _order_prompts()
    for prompts, is_mc in ((multiple_choice, True), (open_ended, False)):
        ratio = model.config.mc_length_ratio if is_mc else None  # as batch_predict cuts them
        chunks = list(model.chunks(model.encode(prompts), length_ratio=ratio))
        one_by_one = [model.batch_predict({"prompt": [p]}, is_mc)[0] for p in prompts]
        # The test can see a mix-up only if a chunk is out of data order and its rows' answers differ.
        assert any(chunk != sorted(chunk) and len({one_by_one[row] for row in chunk}) > 1 for chunk in chunks)
        assert model.batch_predict({"prompt": prompts}, is_mc) == one_by_one
    for prompt, answer in zip(open_ended[-3:], one_by_one[-3:], strict=True):
        assert set(integers_in(answer)) <= set(listed_ids(prompt))


def test_stop_when_complete_judges_each_row_on_its_own_new_text(tiny):
    from functools import partial

    from submission.backends.task_inference import NER, answer_complete
    from submission.backends.transformers import StopWhenComplete

    tokenizer = tiny.tokenizer
    prompt = tokenizer("Output: ", add_special_tokens=False).input_ids
    rows = ["acme", "acme\nmore", "\nacme", "\nacme\n"]
    encoded = [tokenizer(text, add_special_tokens=False).input_ids for text in rows]
    longest = max(len(ids) for ids in encoded)
    pad = tokenizer.pad_token_id
    input_ids = torch.tensor([prompt + ids + [pad] * (longest - len(ids)) for ids in encoded])
    complete = [partial(answer_complete, NER, ids=[])] * len(rows)
    stop = StopWhenComplete(tokenizer, len(prompt), [100] * len(rows), complete)
    assert stop(input_ids, scores=None).tolist() == [False, True, False, True]  # leading line breaks do not count
    budgets = [longest, longest + 1, 1, 100]
    stop = StopWhenComplete(tokenizer, len(prompt), budgets, [lambda text: False] * len(rows))
    assert stop(input_ids, scores=None).tolist() == [True, False, True, False]  # budgets are per row


def test_open_answers_stop_early_without_changing_the_answer(tiny_llama_dir):
    budget = {"retrieval": 30, "ranking": 30, "ner": 30, "generation": 30}
    model = TransformersModel(weights=str(tiny_llama_dir), max_new_tokens=budget)
    encoded = model.encode(OPEN_PROMPTS)
    from submission.backends.task_inference import infer_task_type

    for prompt, ids in zip(OPEN_PROMPTS, encoded, strict=True):
        task_type = infer_task_type(prompt)
        full = model.generate([ids], [30])[0]
        answer = model.batch_predict({"prompt": [prompt]}, is_multiple_choice=False)[0]
        assert answer == shape_output(task_type, full, prompt)


def test_rows_of_one_generate_call_keep_their_own_budgets(tiny):
    encoded = tiny.encode([GENERATION_PROMPT, NER_PROMPT, OPEN_PROMPTS[0]])
    budgets = [2, 9, 5]
    together = tiny.generate(encoded, budgets)
    alone = [tiny.generate([ids], [budget])[0] for ids, budget in zip(encoded, budgets, strict=True)]
    assert together == alone
    for text, budget in zip(together, budgets, strict=True):
        assert len(tiny.tokenizer(text, add_special_tokens=False).input_ids) <= budget
    assert len(set(together)) == 3


def test_chunks_are_sorted_by_length_and_within_the_token_budget(tiny):
    encoded = [[1] * n for n in (50, 10, 30, 200, 20)]
    chunks = list(tiny.chunks(encoded))
    flat = [row for chunk in chunks for row in chunk]
    assert flat == [1, 4, 2, 0, 3]
    for chunk in chunks:
        assert len(chunk) == 1 or max(len(encoded[r]) for r in chunk) * len(chunk) <= tiny.config.max_batch_tokens


def test_chunks_split_uneven_lengths_when_asked(tiny):
    encoded = [[1] * n for n in (100, 10, 12, 30, 26, 11)]
    assert list(tiny.chunks(encoded, length_ratio=1.25)) == [[1, 5, 2], [4, 3], [0]]
    assert list(tiny.chunks(encoded)) == [[1, 5, 2, 4, 3, 0]]


def test_left_padding_gives_the_same_last_logits_as_one_by_one(tiny):
    sequences = tiny.encode(MC_PROMPTS)
    together = tiny.last_logits(sequences)
    alone = torch.cat([tiny.last_logits([s]) for s in sequences])
    torch.testing.assert_close(together, alone, atol=1e-4, rtol=1e-4)


def test_empty_batch_gives_no_answers(tiny):
    assert tiny.batch_predict({"prompt": []}, is_multiple_choice=True) == []
    assert tiny.batch_predict({"prompt": []}, is_multiple_choice=False) == []


def test_chat_template_off_prefixes_the_system_prompt(tiny_llama_dir):
    model = TransformersModel(weights=str(tiny_llama_dir), use_chat_template=False, system_prompt="SYS. ")
    assert model.format_prompt("Q?") == "SYS. Q?"
    chat = TransformersModel(weights=str(tiny_llama_dir), system_prompt="SYS.")
    assert chat.format_prompt("Q?") == "<|im_start|>system\nSYS.<|im_end|>\n<|im_start|>user\nQ?<|im_end|>\n" \
                                       "<|im_start|>assistant\n"


@pytest.mark.parametrize("quantization", ["8bit", "4bit"])
def test_quantized_loading_works_on_cpu(tiny_llama_dir, quantization):
    pytest.importorskip("bitsandbytes")
    model = TransformersModel(weights=str(tiny_llama_dir), quantization=quantization, max_new_tokens=SMALL_BUDGET)
    linear_types = {type(module).__name__ for module in model.model.modules()}
    assert ("Linear8bitLt" if quantization == "8bit" else "Linear4bit") in linear_types
    answers = model.batch_predict({"prompt": MC_PROMPTS}, is_multiple_choice=True)
    assert all(int(a) in mc_choices(p) for p, a in zip(MC_PROMPTS, answers, strict=True))
    ranking = model.batch_predict({"prompt": OPEN_PROMPTS[1:2]}, is_multiple_choice=False)[0]
    assert sorted(parse("ranking", ranking).value) == [1, 2, 3, 4, 5]


@pytest.fixture(scope="module")
def lora_adapter(tiny_llama_dir, tmp_path_factory):
    """A LoRA adapter with non-zero weights saved to disk, and the logits it gives in memory."""
    peft = pytest.importorskip("peft")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    ids = tokenizer(MC_PROMPTS[0], return_tensors="pt").input_ids
    base = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32).eval()
    with torch.inference_mode():
        base_logits = base(ids).logits[:, -1].clone()
    torch.manual_seed(1)
    config = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False,
                             task_type="CAUSAL_LM")
    adapted = peft.get_peft_model(base, config).eval()
    with torch.inference_mode():
        lora_logits = adapted(ids).logits[:, -1].clone()
    folder = tmp_path_factory.mktemp("lora")
    adapted.save_pretrained(folder)
    return folder, ids[0].tolist(), base_logits, lora_logits


def test_lora_adapter_saved_and_reloaded_gives_the_same_logits(tiny_llama_dir, lora_adapter):
    folder, ids, base_logits, lora_logits = lora_adapter
    assert not torch.allclose(base_logits, lora_logits, atol=1e-3), "the adapter must change the logits"
    model = TransformersModel(weights=str(tiny_llama_dir), lora_adapter=str(folder))
    assert isinstance(model.model, pytest.importorskip("peft").PeftModel)
    torch.testing.assert_close(model.last_logits([ids]), lora_logits, atol=1e-5, rtol=1e-5)
    ranking = model.batch_predict({"prompt": OPEN_PROMPTS[1:2]}, is_multiple_choice=False)[0]
    assert sorted(parse("ranking", ranking).value) == [1, 2, 3, 4, 5]


def test_lora_adapter_merged_gives_the_same_logits_without_peft_layers(tiny_llama_dir, lora_adapter):
    folder, ids, _, lora_logits = lora_adapter
    model = TransformersModel(weights=str(tiny_llama_dir), lora_adapter=str(folder), merge_lora=True)
    assert type(model.model).__name__ == "LlamaForCausalLM"
    assert not any("lora" in name for name, _ in model.model.named_parameters())
    torch.testing.assert_close(model.last_logits([ids]), lora_logits, atol=1e-4, rtol=1e-4)


def test_lora_adapter_folder_without_config_is_refused(tiny_llama_dir, tmp_path):
    from submission.errors import ConfigError

    with pytest.raises(ConfigError, match=f"lora_adapter: {tmp_path} has no adapter_config.json"):
        TransformersModel(weights=str(tiny_llama_dir), lora_adapter=str(tmp_path))


def test_missing_weights_folder_says_where_to_put_the_weights(tmp_path):
    from submission.errors import WeightsError

    with pytest.raises(WeightsError, match="does not exist.*Hugging Face model folder"):
        TransformersModel(weights=str(tmp_path / "nowhere"))


def test_get_batch_size_comes_from_the_config(tiny_llama_dir):
    assert TransformersModel(weights=str(tiny_llama_dir), batch_size=3).get_batch_size() == 3
