"""GRPO recipes, launcher and dataset builder (the end-to-end run is in test_e2e_train.py)."""

import json

import pytest
import yaml

from eval.generate import get_template
from scripts import grpo
from scripts.grpo_data import build_rows, interview_rows, with_share
from scripts.interview_format import format_of_dataset
from scripts.recipes import read_recipe, training_dataset
from tests.conftest import REPO

GRPO_RECIPES = sorted((REPO / "configs").glob("*_grpo_*.yaml"))


def test_there_are_grpo_recipes_for_every_profile():
    assert {p.name for p in GRPO_RECIPES} == {f"{task}_{profile}.yaml" for task in ("fc", "interview") for profile in
                                              ("smollm2_grpo_cpu", "qwen3_0.6b_grpo_12gb", "qwen3_8b_grpo_bf16")}


REWARDS = {"fc": ["json_parse_reward", "schema_hit_reward", "exec_reward", "semantic_reward"],
           "interview": ["closing_reward", "score_reward", "moves_on_reward", "no_repeat_reward", "well_formed_reward",
                         "grounded_reward"]}


@pytest.mark.parametrize("recipe", GRPO_RECIPES, ids=lambda p: p.name)
def test_grpo_recipe_builds_a_grpo_config_and_matches_its_sft_recipe(recipe, monkeypatch):
    import transformers.training_args

    monkeypatch.setattr(transformers.training_args, "is_torch_bf16_gpu_available", lambda *a, **k: True)
    config = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    assert config["stage"] == "grpo" and config.get("trust_remote_code") is False
    _, args = grpo.grpo_config(dict(config))
    assert args.num_generations == config["num_generations"]
    assert args.reward_weights == config["reward_weights"]
    assert (args.per_device_train_batch_size * args.gradient_accumulation_steps) % args.num_generations == 0
    task = recipe.name.split("_")[0]
    funcs = grpo.load_reward_funcs(config["reward_funcs"])
    assert [f.__name__ for f in funcs] == REWARDS[task]
    # GRPO continues the adapter of the SFT recipe of the same profile, with the same model and template
    sft = [yaml.safe_load(p.read_text(encoding="utf-8")) for p in (REPO / "configs").glob(f"{task}_*_sft_*.yaml")]
    partner = [s for s in sft if s["output_dir"] == config["sft_adapter"]]
    assert len(partner) == 1, f"no SFT recipe writes {config['sft_adapter']}"
    assert partner[0]["model_name_or_path"] == config["model_name_or_path"]
    assert partner[0]["template"] == config["template"]
    if task == "interview":  # prompts in the format the SFT recipe trained on, no longer than it trained
        assert config["prompt_format"] == format_of_dataset(training_dataset(partner[0]))
        assert config["max_prompt_length"] <= partner[0]["cutoff_len"]
        from reward.interview import REWARD_WEIGHTS
        assert config["reward_weights"] == list(REWARD_WEIGHTS.values())


def test_unknown_keys_and_mismatched_weights_are_errors():
    base = {"stage": "grpo", "model_name_or_path": "m", "template": "qwen", "dataset": "fc_train",
            "reward_funcs": ["reward.fc.exec_reward"], "output_dir": "/tmp/x", "use_cpu": True}
    with pytest.raises(SystemExit, match="num_genrations"):
        grpo.grpo_config({**base, "num_genrations": 4})
    # every problem in one message: two unknown keys, a mistyped launcher key, a missing one
    broken = {k: v for k, v in base.items() if k != "template"}
    with pytest.raises(SystemExit) as error:
        grpo.grpo_config({**broken, "num_genrations": 4, "lern_rate": 1e-5, "lora_rank": "sixteen"}, "x.yaml")
    message = str(error.value)
    assert message.startswith("error: x.yaml: ") and "lora_rank: expected int, got 'sixteen'" in message
    assert ("unknown key(s) lern_rate (did you mean learning_rate?), num_genrations (did you mean num_generations?)"
            in message and "missing key(s) template" in message)
    with pytest.raises(SystemExit, match="one weight per reward"):
        grpo.grpo_config({**base, "reward_weights": [0.5, 0.5]})
    with pytest.raises(SystemExit, match="cannot be imported"):
        grpo.load_reward_funcs(["reward.fc.no_such_reward"])


def test_overrides_are_yaml_values():
    from scripts.recipes import apply_overrides

    recipe = apply_overrides({"max_steps": 10}, ["max_steps=2", "beta=0.04", "use_vllm=false"])
    assert recipe == {"max_steps": 2, "beta": 0.04, "use_vllm": False}
    with pytest.raises(SystemExit):
        apply_overrides({}, ["max_steps"])


def test_prompts_carry_the_tools_in_the_template_format_and_keep_reward_columns(smollm2):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2)
    template = get_template(tokenizer, "smollm2")
    rows = json.loads((REPO / "data/fc/val.json").read_text(encoding="utf-8"))[:5]
    built, too_long = build_rows(rows, tokenizer, template)
    assert too_long == 0 and len(built) == 5
    for row, source in zip(built, rows):
        names = [t["name"] for t in json.loads(source["tools"])]
        assert row["prompt"].startswith("<|im_start|>system\n")
        assert all(f"Tool Name: {name}" in row["prompt"] for name in names)  # LLaMA-Factory's default tool format
        assert source["conversations"][0]["value"] in row["prompt"]
        assert row["prompt"].endswith("<|im_start|>assistant\n")
        answer = source["conversations"][1]
        assert row["tools"] == source["tools"]
        assert row["answers"] == (answer["value"] if answer["from"] == "function_call" else "[]")
    lengths = [len(tokenizer(r["prompt"], add_special_tokens=False)["input_ids"]) for r in built]
    short, left_out = build_rows(rows, tokenizer, template, max_prompt_tokens=sorted(lengths)[2])
    assert len(short) == 3 and left_out == 2  # long prompts are left out, never cut


def test_rows_that_need_no_call_are_prompts_with_no_reference_call(smollm2):
    """GRPO sees the relevance rows too: their answers are "[]", so the rewards pay for declining."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2)
    rows = json.loads((REPO / "data/fc/val.json").read_text(encoding="utf-8"))
    built, _ = build_rows(rows, tokenizer, get_template(tokenizer, "smollm2"))
    assert len(built) == len(rows)
    no_call = [b for b, r in zip(built, rows) if r["conversations"][1]["from"] == "gpt"]
    assert no_call and all(b["answers"] == "[]" for b in no_call)
    assert all(json.loads(b["answers"]) for b in built if b not in no_call)


def test_training_prompts_identical_to_an_eval_prompt_are_left_out(smollm2, tmp_path):
    """make eval scores the GRPO model on eval_dataset: a prompt rewarded in training is left out of it,
    counted; a row with the same query but other tools is a different prompt and stays."""
    from transformers import AutoTokenizer

    from scripts.grpo_data import build_dataset

    tokenizer = AutoTokenizer.from_pretrained(smollm2)
    val = json.loads((REPO / "data/fc/val.json").read_text(encoding="utf-8"))[:4]
    other_tools = {**val[1], "tools": val[2]["tools"]}
    assert other_tools["tools"] != val[1]["tools"]
    train = [val[0], other_tools, val[3], val[3]]
    entry = json.loads((REPO / "dataset_info.json").read_text(encoding="utf-8"))["fc_val"]  # columns and tags
    (tmp_path / "train.json").write_text(json.dumps(train), encoding="utf-8")
    (tmp_path / "val.json").write_text(json.dumps(val), encoding="utf-8")
    (tmp_path / "dataset_info.json").write_text(json.dumps({"x_train": {**entry, "file_name": "train.json"},
                                                            "x_val": {**entry, "file_name": "val.json"}}))
    recipe = {"dataset_dir": str(tmp_path), "dataset": "x_train", "template": "smollm2"}
    dataset, left_out = build_dataset(recipe, tokenizer)
    assert left_out == {"too_long": 0, "in_eval": 3}
    assert len(dataset) == 1 and val[1]["conversations"][0]["value"] in dataset[0]["prompt"]
    # the eval split itself is never filtered against itself
    assert len(build_dataset(recipe, tokenizer, split="val")[0]) == 4
    # the shipped GRPO recipe's pool shares no prompt with fc_val once built
    shipped = read_recipe(REPO / "configs/fc_smollm2_grpo_cpu.yaml")
    pool, _ = build_dataset({**shipped, "no_call_share": None}, tokenizer)
    val_prompts, _ = build_dataset(shipped, tokenizer, split="val")
    assert not set(pool["prompt"]) & set(val_prompts["prompt"])


def test_no_call_share_makes_up_the_share_keeps_every_call_prompt_and_is_seeded():
    from scripts.grpo_data import with_no_call_share

    rows = [{"prompt": f"c{i}", "answers": f"[{i}]"} for i in range(30)] + \
           [{"prompt": f"n{i}", "answers": "[]"} for i in range(5)]
    half = with_no_call_share(rows, 0.5, seed=1)
    assert [r for r in half if r["answers"] != "[]"] == rows[:30]  # every call prompt once, in order
    assert sum(r["answers"] == "[]" for r in half) == 30  # 5 no-call prompts drawn to make up half
    assert {r["prompt"] for r in half if r["answers"] == "[]"} == {f"n{i}" for i in range(5)}
    assert half == with_no_call_share(rows, 0.5, seed=1) and half != with_no_call_share(rows, 0.5, seed=2)
    assert all(half[i]["answers"] != half[i + 2]["answers"] or half[i + 1]["answers"] != half[i]["answers"]
               for i in range(len(half) - 2))  # interleaved, not one block after the other
    assert sum(r["answers"] == "[]" for r in with_no_call_share(rows, 0.1, seed=1)) == 3  # fewer than the data's
    assert with_no_call_share(rows[:30], 0.5, seed=1) == rows[:30]  # nothing to draw from: unchanged
    with pytest.raises(SystemExit, match="no_call_share"):
        with_no_call_share(rows, 1.0, seed=1)


def test_interview_prompts_one_per_turn_in_the_sft_format_with_history_and_reference(smollm2):
    """The interviewer's GRPO prompts: every interviewer turn after the opening of every whole dialogue,
    rendered as the window SFT rows are; the rewards get the interview so far and the dialogue's own turn."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2)
    template = get_template(tokenizer, "smollm2")
    dialogues = json.loads((REPO / "data/interview/train.json").read_text(encoding="utf-8"))[:4]
    window = {r["id"]: r for r in json.loads((REPO / "data/interview/window_train.json").read_text(encoding="utf-8"))}
    task_row = {"system": "x", "conversations": [{"from": "human", "value": "任务：…"}, {"from": "gpt", "value": "好"}]}
    built, too_long = interview_rows(dialogues + [task_row], tokenizer, template, "window")
    turns = sum(t["from"] == "gpt" for d in dialogues for t in d["conversations"])
    assert too_long == 0 and len(built) == turns  # the one-turn task row is left out
    first = built[0]
    history = json.loads(first["history"])
    assert [m["role"] for m in history] == ["candidate"] and first["reference"] == dialogues[0]["conversations"][1]["value"]
    same = window[f"{dialogues[0]['id']}#0"]  # the SFT row of that turn: the same system and window text
    assert same["system"] in first["prompt"] and same["conversations"][0]["value"] in first["prompt"]
    assert first["prompt"].endswith("<|im_start|>assistant\n")
    closings = [r for r in built if "综合评分" in r["reference"]]
    assert len(closings) == 4 and all(r["decision"] for r in closings)
    assert [r["closing"] for r in built] == ["综合评分" in r["reference"] for r in built]
    assert sum(r["decision"] for r in built) > 4  # changes of topic decide too
    whole, _ = interview_rows(dialogues, tokenizer, template, "whole")
    assert [r["history"] for r in whole] == [r["history"] for r in built]
    assert dialogues[0]["system"] in whole[0]["prompt"]
    with pytest.raises(SystemExit, match="prompt_format"):
        interview_rows(dialogues, tokenizer, template, "windows")


def test_closing_share_draws_the_closings_after_decision_share(smollm2):
    """closing_share: of all prompts (after decision_share), that share are the turns where the training
    dialogue closes; the other prompts stay as decision_share left them."""
    from transformers import AutoTokenizer

    from scripts.grpo_data import build_dataset

    tokenizer = AutoTokenizer.from_pretrained(smollm2)
    recipe = read_recipe(REPO / "configs/interview_smollm2_grpo_cpu.yaml")
    decided, _ = build_dataset({**recipe, "closing_share": None}, tokenizer)
    drawn, _ = build_dataset({**recipe, "closing_share": 0.3}, tokenizer)
    assert sum(decided["closing"]) / len(decided) < 0.2
    assert abs(sum(drawn["closing"]) / len(drawn) - 0.3) < 0.005
    assert [r for r in drawn if not r["closing"]] == [r for r in decided if not r["closing"]]
    assert all(("综合评分" in r["reference"]) == r["closing"] for r in drawn)


def test_decision_share_is_the_same_draw():
    rows = [{"decision": i % 5 == 0, "i": i} for i in range(50)]
    half = with_share(rows, lambda r: r["decision"], 0.5, seed=3, key="decision_share")
    assert sum(r["decision"] for r in half) == 40  # 10 decision prompts drawn to match the 40 others
    assert [r for r in half if not r["decision"]] == [r for r in rows if not r["decision"]]
    with pytest.raises(SystemExit, match="decision_share"):
        with_share(rows, lambda r: r["decision"], -0.1, seed=3, key="decision_share")
