"""Does the interviewer know when an interview is over? Its closing probability at every turn of a split.

    python -m eval.closing_probe --recipe configs/interview_smollm2_lora_sft_cpu.yaml
        [--models base,tuned] [--adapter NAME=DIR ...] [--dataset interview_window_val]
        [--max-dialogues N] [--output-dir DIR]
    make closing-probe RECIPE=... PROBE_ARGS="..."

`make simulate` shows *that* a free-mode interviewer closes too early or never; this shows *why*, without
generating. At every interviewer turn of the split (the recipe's val data by default: topics training
never saw), one forward pass reads the model's probability of starting its reply with one of the closing
sentences it was trained on (scripts.prompts.CLOSINGS, summed): P(close). A model that has learned when
an interview is over puts that probability on the turns where the dialogue closes and not elsewhere.
Greedy decoding closes where a closing is the likeliest start, so a P(close) that does not depend on the
turn is an interviewer that closes everywhere (high) or nowhere (low), whatever the candidate said.

Report (report.json / report.md, 95% bootstrap intervals over dialogues, since turns of one dialogue are
not independent; paired differences between models on the same dialogues):
  - auroc: the probability that a closing turn gets a higher P(close) than a non-closing turn
    (1: the model knows exactly where to close; 0.5: P(close) carries no information about it);
  - log10_p_close_at_closings, log10_p_close_elsewhere: the mean log10 P(close) on each kind of turn (a
    whole sentence of ~12 tokens is a small probability; the gap between the two is what matters);
  - closing_probe.png: mean log10 P(close) by interviewer round, closing turns and the others, per model;
  - turns_<model>.jsonl: id, round, whether the dialogue closes there, log10 P(close).
Same recipe, adapters and data: byte-identical reports.
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from eval import stats
from eval.datasets import eval_dataset, examples_from_sharegpt
from eval.figures import line_chart
from eval.generate import encode_prompt, get_template, load_for_eval, load_model, pick_dtype, require_adapter
from eval.interview_policy import closing_score
from scripts.common import (
    REPO_ROOT,
    atomic_write_text,
    read_rows,
    registered_dataset,
    relative_to_repo,
    write_json,
    write_jsonl,
)
from scripts.interview_format import round_of_system
from scripts.prompts import CLOSINGS
from scripts.recipes import read_recipe

KEYS = ("auroc", "log10_p_close_at_closings", "log10_p_close_elsewhere")


def round_of(system: str, messages: list[dict]) -> int:
    """The interviewer round a turn is: the window's state line, else the interviewer turns before it + 1."""
    stated = round_of_system(system or "")
    return stated if stated is not None else 1 + sum(m["role"] == "assistant" for m in messages)


def continuation_log_probs(model, prompt: list[int], continuations: list[list[int]], pad_id: int) -> list[float]:
    """log P(continuation | prompt) for each continuation: the prompt runs once, its cache is shared by the
    continuations, which run as one right-padded batch (the padding comes after every position read)."""
    device = next(model.parameters()).device
    width = max(len(c) for c in continuations)
    ids = torch.full((len(continuations), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(continuations), len(prompt) + width), dtype=torch.long)
    mask[:, : len(prompt)] = 1
    for row, cont in enumerate(continuations):
        ids[row, : len(cont)] = torch.tensor(cont)
        mask[row, len(prompt): len(prompt) + len(cont)] = 1
    with torch.no_grad():
        head = model(input_ids=torch.tensor([prompt], device=device), use_cache=True, logits_to_keep=1)
        first = torch.log_softmax(head.logits[0, -1].float(), dim=-1)
        cache = head.past_key_values
        cache.batch_repeat_interleave(len(continuations))
        rest = torch.log_softmax(model(input_ids=ids.to(device), attention_mask=mask.to(device),
                                       past_key_values=cache).logits.float(), dim=-1)
    return [float(first[cont[0]] + sum(rest[row, j - 1, cont[j]] for j in range(1, len(cont))))
            for row, cont in enumerate(continuations)]


def closing_log10_probabilities(model, tokenizer, prompts: list[list[int]], closings: list[str] = CLOSINGS,
                                desc: str = "closing probe") -> list[float]:
    """log10 P(the reply starts with one of the closing sentences), summed over them, for each prompt."""
    continuations = [tokenizer.encode(text, add_special_tokens=False) for text in closings]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return [float(np.logaddexp.reduce(continuation_log_probs(model, prompt, continuations, pad_id)) / np.log(10))
            for prompt in tqdm(prompts, desc=desc, unit="turn", file=sys.stderr)]


def dialogue_statistic(log10_p_close: list[float], closes: list[bool], dialogue_of: list[int]) -> stats.Statistic:
    """The report's statistic over chosen dialogues (indices into the distinct dialogues, with repeats)."""
    by_dialogue = defaultdict(list)
    for turn, dialogue in enumerate(dialogue_of):
        by_dialogue[dialogue].append(turn)
    turns_of = [np.array(by_dialogue[d]) for d in sorted(by_dialogue)]
    p, c = np.asarray(log10_p_close, dtype=float), np.asarray(closes, dtype=bool)

    def statistic(index) -> dict[str, float]:
        chosen = np.concatenate([turns_of[i] for i in index]) if len(index) else np.array([], dtype=int)
        pc, cc = p[chosen], c[chosen]
        return {"auroc": stats.auroc(pc, cc),
                "log10_p_close_at_closings": float(pc[cc].mean()) if cc.any() else float("nan"),
                "log10_p_close_elsewhere": float(pc[~cc].mean()) if (~cc).any() else float("nan")}
    return statistic


def by_round(turns: list[dict]) -> dict[str, dict[int, float]]:
    """Mean log10 P(close) per round, for closing turns and the others."""
    groups: dict[str, dict[int, list[float]]] = {"closing": defaultdict(list), "other": defaultdict(list)}
    for t in turns:
        groups["closing" if t["closes"] else "other"][t["round"]].append(t["log10_p_close"])
    return {kind: {r: round(float(np.mean(v)), 4) for r, v in sorted(rounds.items())} for kind, rounds in groups.items()}


def chart(path: Path, rounds_of: dict[str, dict[str, dict[int, float]]]) -> None:
    series = {f"{model}: {kind} turns": points for model, rounds in rounds_of.items() for kind, points in rounds.items()}
    line_chart(path, series, "interviewer round", "mean log10 P(reply starts with a closing)",
               "Does the model know when the interview is over?")


def markdown(report: dict, estimates: dict[str, dict[str, stats.Estimate]], pairs: list[dict]) -> str:
    return (f"# Closing probe: {report['recipe']}\n\n{report['dialogues']} dialogues, {report['turns']} interviewer "
            f"turns ({report['closing_turns']} closing) of `{report['dataset']}`; 95% bootstrap intervals over "
            f"dialogues.\n\n" + stats.markdown_tables(estimates, pairs, KEYS) +
            "\nauroc 0.5: P(close) says nothing about where the interview is over; 1: it knows exactly.\n")


def parse_adapters(values: list[str]) -> dict[str, Path]:
    adapters = {}
    for value in values:
        name, sep, folder = value.partition("=")
        if not sep or not name.strip() or not folder.strip():
            raise SystemExit(f"error: --adapter {value!r}: write NAME=DIR (e.g. tuned=runs/x/sft)")
        adapters[name.strip()] = Path(folder.strip())
    return adapters


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", type=Path, required=True, help="an interview SFT recipe")
    parser.add_argument("--models", default="base,tuned", help="comma-separated names: base and those of --adapter")
    parser.add_argument("--adapter", action="append", default=[], metavar="NAME=DIR",
                        help="a named LoRA adapter (repeatable); tuned defaults to the recipe's output_dir")
    parser.add_argument("--dataset", help="a registered dataset (default: the recipe's val split)")
    parser.add_argument("--max-dialogues", type=int, help="a seeded sample of this many dialogues")
    parser.add_argument("--max-prompt-tokens", type=int, default=2048, help="longer prompts are left out (counted)")
    parser.add_argument("--dtype", default="auto", help="auto | bf16 | fp32")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", type=Path)
    args = parser.parse_args(argv)

    if args.max_dialogues is not None and args.max_dialogues < 1:
        parser.error("--max-dialogues is at least 1")
    recipe = read_recipe(args.recipe)
    if recipe.get("stage", "sft") != "sft":
        parser.error("--recipe: an SFT recipe (probe a GRPO adapter with --adapter grpo=DIR)")
    adapters = {"base": None, "tuned": REPO_ROOT / recipe["output_dir"], **parse_adapters(args.adapter)}
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in adapters]
    if not models or unknown:
        parser.error(f"--models: {', '.join(unknown) or 'none'} not among {', '.join(adapters)}")
    for name in models:
        if adapters[name] is not None:
            adapters[name] = require_adapter(adapters[name])

    if args.dataset:
        data_path, _ = registered_dataset(recipe.get("dataset_dir", "."), args.dataset)
    else:
        data_path, _ = eval_dataset(recipe)
    examples = examples_from_sharegpt(read_rows(data_path))
    dialogue_names = [ex.id.split("#", 1)[0] for ex in examples]  # example ids are "<row id>#<turn>"
    names = sorted(set(dialogue_names))
    if args.max_dialogues is not None and args.max_dialogues < len(names):
        sample = set(np.random.default_rng(args.seed).choice(names, size=args.max_dialogues, replace=False).tolist())
        chosen = [i for i, name in enumerate(dialogue_names) if name in sample]  # only these are encoded
        examples, dialogue_names = [examples[i] for i in chosen], [dialogue_names[i] for i in chosen]
    tokenizer, _ = load_model(recipe["model_name_or_path"], weights=False)
    template = get_template(tokenizer, recipe["template"])
    prompts = [encode_prompt(tokenizer, template, ex) for ex in examples]
    keep = [i for i in range(len(examples)) if len(prompts[i]) <= args.max_prompt_tokens]
    too_long = len(examples) - len(keep)
    if not keep:
        raise SystemExit(f"error: {data_path}: every prompt is longer than --max-prompt-tokens {args.max_prompt_tokens}")
    closes = [closing_score(examples[i].label) is not None for i in keep]
    if not any(closes) or all(closes):
        raise SystemExit(f"error: {data_path}: the probe needs closing and non-closing interviewer turns")
    names = sorted({dialogue_names[i] for i in keep})  # a dialogue whose every prompt was too long is not resampled
    index_of = {name: n for n, name in enumerate(names)}
    dialogue_of = [index_of[dialogue_names[i]] for i in keep]
    rounds = [round_of(examples[i].system, examples[i].messages) for i in keep]

    dtype, why = pick_dtype(args.dtype)
    print(f"closing probe: {len(keep)} turns of {len(names)} dialogues ({sum(closes)} closing), "
          f"{too_long} left out as longer than {args.max_prompt_tokens} tokens; {why}", file=sys.stderr)
    output = args.output_dir or (REPO_ROOT / recipe["output_dir"]).parent / "closing_probe"
    statistics, rounds_of = {}, {}
    for name in models:
        model = load_for_eval(recipe["model_name_or_path"], adapters[name], dtype)
        p_close = closing_log10_probabilities(model, tokenizer, [prompts[i] for i in keep], desc=name)
        del model
        turns = [{"id": examples[i].id, "round": r, "closes": c, "log10_p_close": round(p, 4)}
                 for i, r, c, p in zip(keep, rounds, closes, p_close)]
        write_jsonl(output / f"turns_{name}.jsonl", turns)
        statistics[name] = dialogue_statistic(p_close, closes, dialogue_of)
        rounds_of[name] = by_round(turns)

    estimates, pairs = stats.compare(statistics, len(names), seed=args.seed)
    report = {"recipe": relative_to_repo(args.recipe), "dataset": relative_to_repo(Path(data_path)),
              "dialogues": len(names), "turns": len(keep), "closing_turns": sum(closes), "left_out_too_long": too_long,
              "closings": list(CLOSINGS), "seed": args.seed,
              "adapters": {n: relative_to_repo(adapters[n]) if adapters[n] else None for n in models},
              "models": {n: {k: e.as_dict(4) for k, e in estimates[n].items()} for n in models},
              "differences": pairs,
              "by_round": {n: {kind: {str(r): v for r, v in rs.items()} for kind, rs in rounds_of[n].items()}
                           for n in models}}
    write_json(output / "report.json", report)
    text = markdown(report, estimates, pairs)
    atomic_write_text(output / "report.md", text)
    chart(output / "closing_probe.png", rounds_of)
    print(text)
    print(f"closing probe: wrote {relative_to_repo(output)}/ (report.json, report.md, closing_probe.png, turns_*.jsonl)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
