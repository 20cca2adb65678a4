"""A technical interview in the terminal, against a trained interviewer.

    make chat                                               # newest trained interview adapter
    make chat RECIPE=configs/interview_smollm2_lora_sft_cpu.yaml CHAT_ARGS="--job 后端开发工程师 --topics 索引,日志"
    python -m scripts.chat --model runs/interview_smollm2_cpu/merged --template smollm2   # a merged folder
    python -m scripts.chat --recipe configs/interview_smollm2_lora_sft_cpu.yaml --endpoint http://127.0.0.1:8000/v1
                                                            # the model make serve (or vLLM, ...) serves

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
import os
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from eval.classifier import DEFAULT_CLASSIFIER
from eval.endpoint import EndpointInterviewer, connect
from eval.generate import attach_adapter, get_template, load_model
from eval.interview_session import AFTER_SCORE, Decider, Interviewer, Sampling, Steering, TurnRequest, without_repeat
from scripts.common import REPO_ROOT, relative_to_repo, write_json
from scripts.interview_format import FORMATS, format_of_dataset
from scripts.prompts import MAX_INTERVIEWER_ROUNDS
from scripts.recipes import read_recipe, training_dataset

QUIT_COMMANDS = {"/quit", "/exit", "/q"}


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

    def request(self, prefill: str = "") -> TurnRequest:
        messages = [{"role": t.role, "content": t.content} for t in self.turns]
        return TurnRequest(messages, self.job, self.topics, prefill)


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


def resolve_model(args) -> tuple[str, Path | None, str, str]:
    """(base model, adapter or None, template name, prompt format) from --model / --recipe / the newest
    interview adapter."""
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
    return base, adapter, args.template or recipe["template"], prompt_format(args, recipe)


def prompt_format(args, recipe: dict) -> str:
    """--format, else the format of the recipe's training dataset, else whole."""
    return args.format or (format_of_dataset(training_dataset(recipe)) if recipe else "whole")


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
    steering = Steering(session.job, session.topics)
    opening, = interviewer.write([session.request(steering.opening())])
    say(Turn("interviewer", opening, move="OPENING"), session, transcript)

    while True:
        answer = read_answer("你：")
        if answer is None or answer == "/quit":
            session.ended_by = "eof" if answer is None else "quit"
            break
        question = session.turns[-1].content
        move, decision = steering.move(decider, question, answer, session.interviewer_rounds)
        say(Turn("candidate", answer, decision=decision), session, transcript)
        print(f"  [{decider.name}: {decision['label']} -> {move}; 深度 {decision['follow_up_depth']}, "
              f"犹豫 {decision['hesitation_score']:.2f}, 填充词 {decision['filler_count']}, "
              f"长度 {decision['answer_length']}]")
        turn = None
        if move != "CLOSE":
            turn, = interviewer.write([session.request(steering.prefill(move))])
            earlier = [t.content for t in session.turns if t.role == "interviewer"]
            turn, move = without_repeat(interviewer, steering, session.request, turn, move, earlier)
        if turn is None:  # CLOSE, or a follow-up that would only ask again with no topic left
            closing, session.score = steering.close(interviewer, session.request())
            session.review = closing.split(AFTER_SCORE, 1)[1].strip()
            session.ended_by = "rounds" if session.interviewer_rounds >= MAX_INTERVIEWER_ROUNDS - 1 else "closing"
            say(Turn("interviewer", closing, move="CLOSE"), session, transcript)
            break
        say(Turn("interviewer", turn, move=move), session, transcript)
    write_json(transcript, asdict(session))
    return session


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", type=Path, help="interview SFT recipe (default: the newest trained one)")
    parser.add_argument("--adapter", type=Path, help="adapter folder (default: the recipe's output_dir)")
    parser.add_argument("--model", help="a model folder to use as is, e.g. a merged one (make merge); with "
                        "--endpoint, the served model's name (default: the first the endpoint lists)")
    parser.add_argument("--endpoint", help="an OpenAI-compatible URL (make serve, vLLM, ...) to interview with, "
                        "instead of a model loaded here; the prompt format comes from --recipe or --format")
    parser.add_argument("--api-key", help="--endpoint's key (default: $API_KEY)")
    parser.add_argument("--template", help="LLaMA-Factory template (default: the recipe's)")
    parser.add_argument("--format", choices=FORMATS,
                        help="prompt format the model was trained on (default: from the recipe's dataset, else whole)")
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
    sampling = Sampling(args.greedy, args.temperature, args.top_p)
    if args.endpoint:
        recipe = read_recipe(args.recipe) if args.recipe else {}
        fmt = prompt_format(args, recipe)
        client, endpoint = connect(args.endpoint, args.api_key or os.environ.get("API_KEY"), args.model)
        interviewer = EndpointInterviewer(client, endpoint, fmt, sampling=sampling,
                                          max_new_tokens=args.max_new_tokens, seed=args.seed, concurrency=1)
        base, adapter, template_name = f"{endpoint.url} ({endpoint.model})", None, "the server's"
    else:
        base, adapter, template_name, fmt = resolve_model(args)
        tokenizer, model = load_model(base)
        if adapter is not None:
            model = attach_adapter(model, adapter)
        template = get_template(tokenizer, template_name)
        interviewer = Interviewer(model, tokenizer, template, fmt, max_new_tokens=args.max_new_tokens,
                                  seed=args.seed, sampling=sampling)
    decider = Decider(None if args.rules else args.classifier)
    transcript = args.transcript or Path("runs/chat") / f"{time.strftime('%Y%m%d-%H%M%S')}.json"
    if hasattr(sys.stdin, "reconfigure"):
        sys.stdin.reconfigure(errors="replace")  # invalid UTF-8 on stdin becomes U+FFFD, not a crash
    session = Session(job=args.job, topics=topics, decider=decider.name,
                      model={"base": str(base), "adapter": relative_to_repo(adapter) if adapter else None,
                             "template": template_name, "format": fmt},
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
