"""Generate synthetic Chinese technical-interview dialogues from the curated question bank.

    python -m scripts.gen_interview_data [--bank data/bank/question_bank.json]
        [--output data/raw/interview_dialogues.jsonl] [--per-area 70] [--seed 0] [--val-areas network]
        [--val-per-area 20]

The data is synthetic: every question and answer comes from data/bank/question_bank.json, and the
interviewer's behaviour follows fixed rules that mirror the seed's persona:
  - a detailed answer gets a follow-up one level deeper that quotes what the candidate said;
  - a partial answer is probed ("能具体展开吗"); the candidate then gets there or flounders;
  - a hesitant answer (filler words) is met with reassurance and a follow-up;
  - "不了解" makes the interviewer change topic;
  - at most 10 interviewer rounds; the last one closes with a score (N/100) and a review.
Candidates have a skill level (strong / medium / weak) that sets how often each kind of answer
occurs, so answers of every quality appear. Same bank, seed and counts: byte-identical output.

Every dialogue carries `split`: the dialogues of the --val-areas (default: network) are validation,
all others training (of a held-out area, the first --val-per-area are kept). Validation then asks only
questions, topics and answers training never saw, so `make eval` measures generalisation rather than
recall of the bank.
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from scripts.common import write_jsonl
from scripts.prompts import CHANGE_TOPIC, CLOSINGS, MAX_INTERVIEWER_ROUNDS, OPENINGS, SCORE_LINE, WRAP_TOPIC

DEFAULT_BANK = Path("data/bank/question_bank.json")
DEFAULT_OUTPUT = Path("data/raw/interview_dialogues.jsonl")

QUALITIES = ("detailed", "partial", "hesitant", "unknown")
VAL_AREAS = ("network",)  # held out whole: no question, topic or answer of it is in the training split
VAL_PER_AREA = 20  # dialogues kept of a held-out area: ~175 interviewer turns, so make eval on CPU stays ~10 min
SKILL_MIX = {  # probability of each answer quality, by candidate skill
    "strong": (0.60, 0.25, 0.10, 0.05),
    "medium": (0.30, 0.35, 0.20, 0.15),
    "weak": (0.10, 0.30, 0.25, 0.35),
}
QUALITY_POINTS = {"detailed": 1.0, "partial": 0.6, "hesitant": 0.45, "unknown": 0.0}

GREETINGS = [
    "面试官您好，我是来面试{job}岗位的。",
    "您好，我应聘的是{job}，请多指教。",
    "你好，我今天来面{job}。",
    "面试官好，我准备好了，应聘{job}。",
]
FOLLOW_DETAILED = [
    "不错。你提到了{kw}，我继续追问：{q}",
    "很好，既然说到{kw}，那么{q}",
    "嗯，关于{kw}讲得比较清楚。再深入一点：{q}",
    "好，你讲到了{kw}。{q}",
]
PROBE_PARTIAL = [
    "你说到了{kw}，但不够完整。能具体展开讲讲吗？",
    "{kw}只是其中一部分，还有呢？请再具体一点。",
    "嗯，{kw}没错，但原理是什么？能详细说说吗？",
]
FOLLOW_HESITANT = [
    "不用紧张，慢慢说。你刚才提到{kw}，那{q}",
    "没关系，想到什么说什么。顺着{kw}往下问：{q}",
]
UNKNOWN_ANSWERS = [
    "这个我不太了解。",
    "不好意思，这块我没怎么接触过。",
    "不会，这个没研究过。",
    "这个……我不清楚。",
]
HESITANT_PREFIX = ["嗯……", "呃，这个……", "那个……我想想，", "嗯，就是……"]
HESITANT_SUFFIX = ["……大概是这样吧。", "……具体的不太记得了。", "……应该是吧。", "……就是这样。"]


@dataclass
class Dialogue:
    messages: list[dict] = field(default_factory=list)
    answered: list[tuple[str, str]] = field(default_factory=list)  # (topic name, quality)

    def say(self, role: str, content: str, quality: str | None = None) -> None:
        message = {"role": role, "content": content}
        if quality is not None:
            message["quality"] = quality
        self.messages.append(message)

    @property
    def interviewer_rounds(self) -> int:
        return sum(m["role"] == "interviewer" for m in self.messages)


def candidate_answer(rng: random.Random, level: dict, quality: str) -> tuple[str, str]:
    """The candidate's text and the phrase of it a follow-up may quote."""
    if quality == "detailed":
        return level["good"], level["gkw"]
    if quality == "partial":
        return level["partial"], level["pkw"]
    if quality == "hesitant":
        return rng.choice(HESITANT_PREFIX) + level["partial"].rstrip("。") + rng.choice(HESITANT_SUFFIX), level["pkw"]
    return rng.choice(UNKNOWN_ANSWERS), ""


def review_text(rng: random.Random, answered: list[tuple[str, str]], score: int) -> str:
    by_topic: dict[str, list[str]] = {}
    for topic, quality in answered:
        by_topic.setdefault(topic, []).append(quality)
    solid = [t for t, qs in by_topic.items() if qs.count("detailed") >= max(1, len(qs) / 2)]
    weak = [t for t, qs in by_topic.items() if "unknown" in qs]
    shallow = [t for t, qs in by_topic.items() if t not in solid and t not in weak]
    parts = []
    if solid:
        parts.append(f"{'、'.join(solid)}方面基础扎实，能讲清底层原理")
    if shallow:
        parts.append(f"{'、'.join(shallow)}只停留在表面，追问到细节时不够深入")
    if weak:
        parts.append(f"{'、'.join(weak)}掌握不足，需要系统补课")
    hesitant = sum(q == "hesitant" for _, q in answered)
    if hesitant >= 2:
        parts.append("回答时犹豫较多，表达需要更有条理")
    if score >= 80:
        verdict = rng.choice(["整体表现优秀，建议进入下一轮。", "综合来看达到岗位要求，推荐通过。"])
    elif score >= 60:
        verdict = rng.choice(["整体合格，但深度还需加强，可以考虑进入下一轮。", "基础尚可，建议针对薄弱环节再准备。"])
    else:
        verdict = rng.choice(["目前与岗位要求有差距，暂不推荐。", "基础知识还不够牢固，建议加强后再来。"])
    return "；".join(parts) + "。" + verdict


def score_of(rng: random.Random, answered: list[tuple[str, str]]) -> int:
    mean = sum(QUALITY_POINTS[q] for _, q in answered) / max(1, len(answered))
    return max(0, min(100, round(35 + 60 * mean + rng.randint(-3, 3))))


def make_dialogue(rng: random.Random, area: dict, index: int) -> dict:
    skill = rng.choice(list(SKILL_MIX))
    topics = rng.sample(area["topics"], k=rng.randint(2, min(4, len(area["topics"]))))
    job = area["job"]
    d = Dialogue()
    d.say("candidate", rng.choice(GREETINGS).format(job=job), "greeting")
    first = topics[0]
    d.say("interviewer", rng.choice(OPENINGS).format(job=job, topic=first["name"], q=first["chain"][0]["q"]))

    # One interviewer round is kept for the closing.
    budget = MAX_INTERVIEWER_ROUNDS - 1
    unknown_streak = 0
    for t_index, topic in enumerate(topics):
        next_topic = topics[t_index + 1] if t_index + 1 < len(topics) else None
        level_index, probed = 0, False
        while True:
            level = topic["chain"][level_index]
            mix = SKILL_MIX[skill]
            if probed:  # pressed for detail, the candidate either gets there or flounders
                quality = rng.choices(("detailed", "hesitant"), weights=(mix[0] + mix[1], mix[2] + mix[3]))[0]
            else:
                quality = rng.choices(QUALITIES, weights=mix)[0]
            text, kw = candidate_answer(rng, level, quality)
            d.say("candidate", text, quality)
            d.answered.append((topic["name"], quality))
            unknown_streak = unknown_streak + 1 if quality == "unknown" else 0
            if d.interviewer_rounds >= budget or unknown_streak >= 3:
                break
            deeper = level_index + 1 < len(topic["chain"])
            if quality == "partial":
                d.say("interviewer", rng.choice(PROBE_PARTIAL).format(kw=kw))
                probed = True
                continue
            if quality != "unknown" and deeper:
                template = FOLLOW_DETAILED if quality == "detailed" else FOLLOW_HESITANT
                level_index, probed = level_index + 1, False
                d.say("interviewer", rng.choice(template).format(kw=kw, q=topic["chain"][level_index]["q"]))
                continue
            if next_topic is not None:
                q0 = next_topic["chain"][0]["q"]
                if quality == "unknown":
                    line = rng.choice(CHANGE_TOPIC).format(topic=next_topic["name"], q=q0)
                else:
                    line = rng.choice(WRAP_TOPIC).format(topic=topic["name"], next=next_topic["name"], q=q0)
                d.say("interviewer", line)
            break
        if d.messages[-1]["role"] == "candidate":  # budget spent, streak of "不了解", or no topic left
            break

    score = score_of(rng, d.answered)
    review = review_text(rng, d.answered, score)
    d.say("interviewer", rng.choice(CLOSINGS) + SCORE_LINE.format(score=score, review=review))
    return {
        "id": f"{area['id']}-{index:04d}",
        "area": area["name"],
        "job": job,
        "skill": skill,
        "topics": [t["name"] for t in topics],
        "messages": d.messages,
        "score": score,
        "review": review,
    }


def generate(bank: dict, per_area: int, seed: int, val_areas: tuple[str, ...] = VAL_AREAS,
             val_per_area: int = VAL_PER_AREA) -> list[dict]:
    """per_area dialogues of every area, in bank order; of a held-out area only the first val_per_area are
    kept (all are drawn, so the training dialogues do not depend on how many are kept)."""
    unknown = sorted(set(val_areas) - {area["id"] for area in bank["areas"]})
    if unknown:
        raise SystemExit(f"error: --val-areas {', '.join(unknown)}: not an area of the bank")
    rng = random.Random(seed)
    out = []
    for area in bank["areas"]:
        held_out = area["id"] in val_areas
        for i in range(per_area):
            dialogue = make_dialogue(rng, area, i)
            if not held_out or i < val_per_area:
                out.append({**dialogue, "split": "val" if held_out else "train"})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bank", type=Path, default=DEFAULT_BANK)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--per-area", type=int, default=70)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val-areas", default=",".join(VAL_AREAS), help="comma-separated area ids held out for val")
    parser.add_argument("--val-per-area", type=int, default=VAL_PER_AREA, help="dialogues kept of each held-out area")
    args = parser.parse_args(argv)

    bank = json.loads(args.bank.read_text(encoding="utf-8"))
    dialogues = generate(bank, args.per_area, args.seed, tuple(a for a in args.val_areas.split(",") if a),
                         args.val_per_area)
    write_jsonl(args.output, dialogues)
    print(f"gen_interview_data: {len(dialogues)} dialogues over {len(bank['areas'])} areas -> {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
