"""A technical interview in the terminal, against a trained interviewer.

    make chat                                               # newest trained interview adapter
    make chat RECIPE=configs/interview_smollm2_lora_sft_cpu.yaml CHAT_ARGS="--job 后端开发工程师 --topics 索引,日志"
    python -m scripts.chat --model runs/interview_smollm2_cpu/merged --template smollm2   # a merged folder

Who decides what, and why:
- The decision module decides the move after every answer: FOLLOW_UP (probe deeper), NEXT_TOPIC (the
  candidate does not know: change topic) or END (this topic is covered). It is the encoder classifier of
  `make classifier` when one is trained (--classifier), otherwise the rule baseline (eval/decision_rules.py).
  Two rules hold whatever it says: "不了解"-style answers change the topic, and a topic ends after 3 follow-ups.
- The interviewer model writes every word. The move is imposed by prefilling the start of its turn with
  the phrasing the training dialogues use for that move ("好，X就聊到这里。接下来是Y：", ...), and the model
  continues from there: a small model keeps to the plan, a large one barely notices the prefill.
- At most 10 interviewer rounds (seed 000); the last is the closing. The score's two digits are decoded
  constrained to digits (the model's own most likely score, never an unparseable one), then the model
  writes the review.
- /quit or Ctrl-D end the session at once. The transcript (turns, decisions with their features, score)
  is rewritten atomically after every turn, so nothing is lost on Ctrl-C either.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from eval.classifier import DEFAULT_CLASSIFIER, classifier_text, classify, find_classifier, load_classifier
from eval.datasets import Example
from eval.decision_rules import decide as rule_decision
from eval.generate import attach_adapter, encode_prompt, get_template, load_model, stop_token_ids
from scripts.common import REPO_ROOT, relative_to_repo, write_json
from scripts.prompts import (
    CHANGE_TOPIC,
    CLOSINGS,
    INTERVIEWER_SYSTEM_PROMPT,
    MAX_INTERVIEWER_ROUNDS,
    OPENINGS,
    SCORE_PREFIX,
    SCORE_SUFFIX,
    WRAP_TOPIC,
    move_prefill,
)
from scripts.recipes import read_recipe
from scripts.speech import answer_length, filler_count, says_unknown, text_hesitation

MAX_DEPTH = 3  # the decision data's follow_up_depth range
UNKNOWN_STREAK_CLOSE = 3  # three "不知道" in a row: the interview has nothing left to find
QUIT_COMMANDS = {"/quit", "/exit", "/q"}
CLOSING = CLOSINGS[-1] + SCORE_PREFIX  # the training dialogues' closing, up to the score digits
AFTER_SCORE = SCORE_SUFFIX


@dataclass
class Turn:
    role: str  # "candidate" | "interviewer"
    content: str
    move: str | None = None  # interviewer turns: OPENING / FOLLOW_UP / NEXT_TOPIC / END / CLOSE
    decision: dict | None = None  # candidate turns: the decision module's label, applied move and features


@dataclass
class Session:
    job: str
    topics: list[str]
    model: dict
    decider: str
    sampling: dict
    turns: list[Turn] = field(default_factory=list)
    score: int | None = None
    review: str | None = None
    ended_by: str | None = None  # closing | rounds | quit | eof | interrupt

    @property
    def interviewer_rounds(self) -> int:
        return sum(t.role == "interviewer" for t in self.turns)

    def messages(self) -> list[dict]:
        return [{"role": "user" if t.role == "candidate" else "assistant", "content": t.content} for t in self.turns]


class Interviewer:
    """The interviewer model: LLaMA-Factory's template renders the history exactly as in training."""

    def __init__(self, model, tokenizer, template, *, greedy: bool, temperature: float, top_p: float,
                 max_new_tokens: int, seed: int):
        self.model, self.tokenizer, self.template = model, tokenizer, template
        self.stop_ids = stop_token_ids(tokenizer, template)
        self.greedy, self.temperature, self.top_p = greedy, temperature, top_p
        self.max_new_tokens, self.seed, self.calls = max_new_tokens, seed, 0
        self.digit_ids = [tokenizer.convert_tokens_to_ids(str(d)) for d in range(10)]
        if any(not isinstance(i, int) or i == tokenizer.unk_token_id for i in self.digit_ids):
            raise SystemExit("error: the tokenizer has no single-token digits 0-9 (needed to decode the score)")

    def _prompt(self, messages: list[dict], prefill: str) -> list[int]:
        example = Example(id="chat", system=INTERVIEWER_SYSTEM_PROMPT, messages=messages, label="")
        return encode_prompt(self.tokenizer, self.template, example) + self.tokenizer.encode(
            prefill, add_special_tokens=False)

    @torch.inference_mode()
    def continue_turn(self, messages: list[dict], prefill: str = "", max_new_tokens: int | None = None) -> str:
        """The interviewer's turn: the prefill, then the model's own words up to its end-of-turn token."""
        ids = torch.tensor([self._prompt(messages, prefill)], device=self.model.device)
        torch.manual_seed(self.seed + self.calls)  # same seed + same answers = same interview
        self.calls += 1
        sampling = ({"do_sample": False} if self.greedy else
                    {"do_sample": True, "temperature": self.temperature, "top_p": self.top_p})
        out = self.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                  max_new_tokens=max_new_tokens or self.max_new_tokens,
                                  eos_token_id=self.stop_ids, pad_token_id=self.stop_ids[0], **sampling)
        text = self.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()
        return prefill + text

    @torch.inference_mode()
    def score(self, messages: list[dict], prefill: str) -> int:
        """Two digits, each the model's most likely digit: 10-99, always parseable."""
        ids = self._prompt(messages, prefill)
        digits = ""
        for position in range(2):
            logits = self.model(torch.tensor([ids], device=self.model.device)).logits[0, -1]
            allowed = self.digit_ids[1:] if position == 0 else self.digit_ids
            best = max(allowed, key=lambda i: float(logits[i]))
            digits += str(self.digit_ids.index(best))
            ids.append(best)
        return int(digits)


class Decider:
    """FOLLOW_UP / NEXT_TOPIC / END from the question, the answer and its speech features."""

    def __init__(self, classifier: Path | None):
        found = find_classifier(classifier)
        self.name = f"classifier ({relative_to_repo(found)})" if found else "rules"
        self.classifier = load_classifier(found) if found else None

    @staticmethod
    def features(answer: str, depth: int) -> dict:
        # Text stands in for audio here: hesitation is estimated from fillers and pauses in the transcript.
        return {"follow_up_depth": min(depth, MAX_DEPTH), "hesitation_score": text_hesitation(answer),
                "filler_count": filler_count(answer), "answer_length": answer_length(answer)}

    def label(self, question: str, answer: str, context: dict) -> str:
        if self.classifier is None:
            return rule_decision(answer, context)
        return classify(self.classifier, [classifier_text({"question": question, "answer": answer,
                                                            "context": context})])[0]


def plan_move(label: str, answer: str, depth: int) -> str:
    """The decision module's label, with the two rules that hold regardless."""
    if says_unknown(answer):
        return "NEXT_TOPIC"
    if label == "FOLLOW_UP" and depth >= MAX_DEPTH:
        return "END"
    return label


def trained_interviewers() -> list[tuple[float, Path, Path]]:
    """(mtime, recipe, adapter dir) for every trained adapter of an interview SFT recipe in configs/."""
    found = []
    for recipe_path in sorted((REPO_ROOT / "configs").glob("*.yaml")):
        recipe = read_recipe(recipe_path) or {}
        if recipe.get("stage") != "sft" or not str(recipe.get("dataset", "")).startswith("interview"):
            continue
        output = REPO_ROOT / recipe["output_dir"]
        for adapter in [output, *output.glob("checkpoint-*")]:
            weights = adapter / "adapter_model.safetensors"
            if weights.is_file():
                found.append((weights.stat().st_mtime, recipe_path, adapter))
    return sorted(found)


def resolve_model(args) -> tuple[str, Path | None, str]:
    """(base model, adapter or None, template name) from --model / --recipe / the newest interview adapter."""
    if args.model:
        if not args.template and not args.recipe:
            raise SystemExit("error: --model needs --template (or --recipe to take it from)")
    recipe_path, adapter = args.recipe, args.adapter
    if not args.model and recipe_path is None and adapter is None:
        found = trained_interviewers()
        if not found:
            raise SystemExit("error: no trained interviewer found (train one first: make sft), "
                             "or name one: --recipe / --model")
        _, recipe_path, adapter = found[-1]
    recipe = read_recipe(Path(recipe_path)) if recipe_path else {}
    base = args.model or recipe.get("model_name_or_path")
    if base is None:
        raise SystemExit("error: --adapter needs --recipe (for the base model and template)")
    if adapter is None and recipe and not args.model:
        adapter = Path(recipe["output_dir"])
    if args.no_adapter:
        adapter = None
    return base, adapter, args.template or recipe["template"]


MAX_ANSWER_CHARS = 2000  # an answer is a few sentences; a pasted log would crowd the model's context out
CONTROL = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # ANSI sequences, C0/C1 controls


def clean_answer(line: str) -> str:
    """What is kept of a typed line: control characters and terminal escape sequences dropped (tabs become
    spaces), at most MAX_ANSWER_CHARS characters (the candidate is told when the rest is cut)."""
    line = CONTROL.sub("", line.replace("\t", " ")).strip()
    if len(line) > MAX_ANSWER_CHARS:
        print(f"（回答过长：只保留前 {MAX_ANSWER_CHARS} 字，共 {len(line)} 字）", file=sys.stderr)
        line = line[:MAX_ANSWER_CHARS]
    return line


def read_answer(prompt: str) -> str | None:
    """The candidate's next answer; None when they quit (/quit or end of input). Bytes that are not
    UTF-8 arrive as U+FFFD (stdin is reconfigured in main), so no input ends the interview by accident."""
    while True:
        try:
            line = input(prompt)
        except EOFError:
            return None
        line = clean_answer(line)
        if not sys.stdin.isatty():
            print(line)  # scripted input: show it, as a terminal would have
        if line.lower() in QUIT_COMMANDS:
            return "/quit"
        if line:
            return line


def say(turn: Turn, session: Session, path: Path) -> None:
    session.turns.append(turn)
    if turn.role == "interviewer":
        print(f"\n面试官：{turn.content}\n", flush=True)
    write_json(path, asdict(session))


def run(session: Session, interviewer: Interviewer, decider: Decider, transcript: Path) -> Session:
    greeting = f"面试官您好，我是来面试{session.job}岗位的。"
    print(f"（面试开始：{session.job}；话题：{'、'.join(session.topics)}；决策：{decider.name}；/quit 结束）")
    print(f"你：{greeting}")
    say(Turn("candidate", greeting), session, transcript)
    topic, depth, unknown_streak = 0, 0, 0
    opening = move_prefill(OPENINGS[0], job=session.job, topic=session.topics[0])
    say(Turn("interviewer", interviewer.continue_turn(session.messages(), opening), move="OPENING"),
        session, transcript)

    while True:
        answer = read_answer("你：")
        if answer is None or answer == "/quit":
            session.ended_by = "eof" if answer is None else "quit"
            break
        question = session.turns[-1].content
        context = Decider.features(answer, depth)
        label = decider.label(question, answer, context)
        move = plan_move(label, answer, depth)
        unknown_streak = unknown_streak + 1 if says_unknown(answer) else 0
        last_round = session.interviewer_rounds >= MAX_INTERVIEWER_ROUNDS - 1
        if move != "FOLLOW_UP" and topic + 1 >= len(session.topics):
            move = "CLOSE"  # no topic left
        if last_round or unknown_streak >= UNKNOWN_STREAK_CLOSE:
            move = "CLOSE"
        say(Turn("candidate", answer, decision={"label": label, "move": move, "decider": decider.name, **context}),
            session, transcript)
        print(f"  [{decider.name}: {label} -> {move}; 深度 {context['follow_up_depth']}, "
              f"犹豫 {context['hesitation_score']:.2f}, 填充词 {context['filler_count']}, 长度 {context['answer_length']}]")

        if move == "CLOSE":
            messages = session.messages()
            score = interviewer.score(messages, CLOSING)
            closing = interviewer.continue_turn(messages, f"{CLOSING}{score}{AFTER_SCORE}", max_new_tokens=160)
            session.score, session.review = score, closing.split(AFTER_SCORE, 1)[1].strip()
            session.ended_by = "rounds" if last_round else "closing"
            say(Turn("interviewer", closing, move="CLOSE"), session, transcript)
            break
        if move == "FOLLOW_UP":
            depth, prefill = depth + 1, ""
        else:
            current, topic, depth = session.topics[topic], topic + 1, 0
            prefill = (move_prefill(CHANGE_TOPIC[0], topic=session.topics[topic]) if move == "NEXT_TOPIC"
                       else move_prefill(WRAP_TOPIC[0], topic=current, next=session.topics[topic]))
        say(Turn("interviewer", interviewer.continue_turn(session.messages(), prefill), move=move),
            session, transcript)
    write_json(transcript, asdict(session))
    return session


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", type=Path, help="interview SFT recipe (default: the newest trained one)")
    parser.add_argument("--adapter", type=Path, help="adapter folder (default: the recipe's output_dir)")
    parser.add_argument("--model", help="a model folder to use as is, e.g. a merged one (make merge)")
    parser.add_argument("--template", help="LLaMA-Factory template (default: the recipe's)")
    parser.add_argument("--no-adapter", action="store_true", help="talk to the base model (to compare)")
    parser.add_argument("--job", default="后端开发工程师")
    parser.add_argument("--topics", default="Redis 持久化,索引,TCP 连接管理",
                        help="comma-separated topics, asked in this order")
    parser.add_argument("--classifier", type=Path, default=DEFAULT_CLASSIFIER,
                        help="follow-up decision classifier (make classifier); the rules decide when absent")
    parser.add_argument("--rules", action="store_true", help="decide with the rule baseline even if a classifier exists")
    parser.add_argument("--greedy", action="store_true", help="greedy decoding (default: seed 000's sampling)")
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--top-p", type=float, default=0.9)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--transcript", type=Path, help="where to save it (default: runs/chat/<time>.json)")
    args = parser.parse_args(argv)

    topics = [t.strip() for t in args.topics.split(",") if t.strip()]
    if not topics:
        parser.error("--topics: give at least one topic")
    base, adapter, template_name = resolve_model(args)
    tokenizer, model = load_model(base)
    if adapter is not None:
        model = attach_adapter(model, adapter)
    template = get_template(tokenizer, template_name)
    interviewer = Interviewer(model, tokenizer, template, greedy=args.greedy, temperature=args.temperature,
                              top_p=args.top_p, max_new_tokens=args.max_new_tokens, seed=args.seed)
    decider = Decider(None if args.rules else args.classifier)
    transcript = args.transcript or Path("runs/chat") / f"{time.strftime('%Y%m%d-%H%M%S')}.json"
    if hasattr(sys.stdin, "reconfigure"):
        sys.stdin.reconfigure(errors="replace")  # invalid UTF-8 on stdin becomes U+FFFD, not a crash
    session = Session(job=args.job, topics=topics, decider=decider.name,
                      model={"base": str(base), "adapter": relative_to_repo(adapter) if adapter else None,
                             "template": template_name},
                      sampling={"greedy": args.greedy, "temperature": args.temperature, "top_p": args.top_p,
                                "max_new_tokens": args.max_new_tokens, "seed": args.seed})
    try:
        run(session, interviewer, decider, transcript)
    except KeyboardInterrupt:
        session.ended_by = "interrupt"
        write_json(transcript, asdict(session))
        print()
    score = f"，评分 {session.score}/100" if session.score is not None else ""
    print(f"（面试结束：{session.ended_by}，{session.interviewer_rounds} 轮{score}；记录：{relative_to_repo(transcript)}）")
    return 0


if __name__ == "__main__":
    sys.exit(main())
