"""Generate labelled follow-up decisions (seed 001's schema) from the interview question bank.

    python -m scripts.gen_followup_data [--output data/raw/followup_decisions.jsonl] [--rows 2000] [--seed 0]

Each row: the question asked at some follow-up depth of a topic's chain, the candidate's answer
(the bank's detailed or partial answer, a hesitant version of it, or "不了解"), features computed
from the answer text (scripts/speech.py) with audio-like noise on the hesitation score, and the label
a careful annotator following seed 001's guide would give:
  FOLLOW_UP   the answer has content (long enough, not hesitant) and the topic can go deeper;
  NEXT_TOPIC  the candidate does not know, is very hesitant or says little, or depth 3 is reached
              without a good answer;
  END         depth 3 with a good answer, or the chain's last question answered well (the topic is
              exhausted: there is no deeper question in the bank).
Realistic ambiguity, so that labels are not a function of the four features alone: a hesitant but
substantive answer is probed by some annotators and dropped by others, and a good answer to the
chain's last question ends the topic for most annotators but not all. The label mix is about
2:2:1 (FOLLOW_UP : NEXT_TOPIC : END). Same bank, seed and count: byte-identical file.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from scripts.common import write_jsonl
from scripts.speech import answer_length, filler_count, text_hesitation

DEFAULT_BANK = Path("data/bank/question_bank.json")
DEFAULT_OUTPUT = Path("data/raw/followup_decisions.jsonl")

UNKNOWN_ANSWERS = ["这个我不太了解。", "不好意思，这块我没接触过。", "不会，这个没研究过。", "这个……我不清楚。",
                   "嗯……不知道。", "没用过，不了解。"]
LIGHT_PREFIX = ["", "", "", "嗯，", "这个问题，", "我理解是，"]
HESITANT_PREFIX = ["嗯……", "呃，这个……", "那个……我想想，", "嗯，就是……", "啊……那个，"]
HESITANT_SUFFIX = ["……大概是这样吧。", "……具体的不太记得了。", "……应该是吧。", "……就是这样。", "……然后，嗯，就这些。"]
SHORT_ANSWERS = ["用过。", "嗯，了解一点。", "知道，就是那个。", "大概知道。"]
REASONS = {
    ("FOLLOW_UP", "good"): "回答有内容，可以沿着{kw}继续深入。",
    ("FOLLOW_UP", "partial"): "回答提到了{kw}，但不完整，需要追问细节。",
    ("FOLLOW_UP", "hesitant"): "虽然有些犹豫，但提到了{kw}，值得追问确认。",
    ("NEXT_TOPIC", "unknown"): "候选人表示不了解，换一个话题。",
    ("NEXT_TOPIC", "hesitant"): "回答犹豫且内容单薄，继续追问意义不大，换话题。",
    ("NEXT_TOPIC", "short"): "回答过短，没有可追问的内容，换话题。",
    ("NEXT_TOPIC", "depth"): "已追问到第三层仍未答好，换话题。",
    ("END", "depth"): "已追问三层且回答质量好，该话题可以结束。",
    ("END", "exhausted"): "最深一层也答得很好，该话题已充分探讨，结束。",
}


def noisy_hesitation(rng: random.Random, text: str, shift: float = 0.0) -> float:
    """The transcript estimate plus what only the audio knows (pauses, pace): Gaussian noise."""
    return round(min(1.0, max(0.0, text_hesitation(text) + shift + rng.gauss(0, 0.08))), 2)


def make_row(rng: random.Random, row_id: int, chains: list[tuple[str, list[dict]]]) -> dict:
    topic, chain = rng.choice(chains)
    target = rng.choices(["FOLLOW_UP", "NEXT_TOPIC", "END"], weights=[2.3, 2, 0.7])[0]  # END also comes from FOLLOW_UP rows
    kind = ""
    if target == "FOLLOW_UP":
        depth = rng.choice([0, 0, 1, 1, 2])
        level = chain[min(depth, 2)]
        kind = rng.choices(["good", "partial", "hesitant"], weights=[5, 3, 2])[0]
        if kind == "good":
            answer, kw = rng.choice(LIGHT_PREFIX) + level["good"], level["gkw"]
        elif kind == "partial":
            answer, kw = level["partial"], level["pkw"]
        else:
            answer, kw = rng.choice(HESITANT_PREFIX) + level["partial"].rstrip("。") + rng.choice(HESITANT_SUFFIX), level["pkw"]
        label = target
        if depth == 2 and kind == "good" and rng.random() < 0.75:  # the chain's last question answered well
            label, kind = "END", "exhausted"
        elif kind == "hesitant" and rng.random() < 0.3:  # ambiguous: this annotator drops the topic
            label = "NEXT_TOPIC"
    elif target == "NEXT_TOPIC":
        depth = rng.choice([0, 1, 2, 3])
        level = chain[min(depth, 2)]
        kind = rng.choices(["unknown", "hesitant", "short", "depth"], weights=[4, 3, 2, 2])[0]
        kw = ""
        if kind == "unknown":
            answer = rng.choice(UNKNOWN_ANSWERS)
        elif kind == "hesitant":
            answer = rng.choice(HESITANT_PREFIX) + level["partial"].rstrip("。") + rng.choice(HESITANT_SUFFIX)
        elif kind == "short":
            answer = rng.choice(SHORT_ANSWERS)
        else:
            depth, answer = 3, rng.choice([level["partial"], rng.choice(HESITANT_PREFIX) + level["partial"]])
        label = target
        if kind == "hesitant" and depth < 3 and rng.random() < 0.2:  # ambiguous: this annotator probes on
            label, kw = "FOLLOW_UP", level["pkw"]
    else:
        depth, level = 3, chain[2]
        kind, kw = "depth", level["gkw"]
        answer = rng.choice(LIGHT_PREFIX) + level["good"]
        label = "END"
    hesitation = noisy_hesitation(rng, answer, -0.05 if kind in ("good", "exhausted", "depth") and label != "NEXT_TOPIC" else 0.0)
    reason_kind = kind if (label, kind) in REASONS else ("hesitant" if label != "END" else "depth")
    return {
        "id": f"fu-{row_id:04d}",
        "question": level["q"],
        "answer": answer,
        "context": {"follow_up_depth": depth, "hesitation_score": hesitation,
                    "filler_count": filler_count(answer), "answer_length": answer_length(answer)},
        "label": label,
        "reason": REASONS[(label, reason_kind)].format(kw=kw or topic),
    }


def generate(bank: dict, rows: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    chains = [(topic["name"], topic["chain"]) for area in bank["areas"] for topic in area["topics"]]
    return [make_row(rng, i, chains) for i in range(rows)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bank", type=Path, default=DEFAULT_BANK)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rows = generate(json.loads(args.bank.read_text(encoding="utf-8")), args.rows, args.seed)
    write_jsonl(args.output, rows)
    counts = {label: sum(r["label"] == label for r in rows) for label in ("FOLLOW_UP", "NEXT_TOPIC", "END")}
    print(f"gen_followup_data: {len(rows)} rows {counts} -> {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
