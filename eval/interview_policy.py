"""The interviewer policy scorer: the one definition of how the interviewer must behave.

    python -m eval.interview_policy --transcripts FILE.jsonl [--verdicts OUT.jsonl]

Input: transcripts in the raw dialogue schema, one JSON object a line (or a JSON list): `id` and
`messages`, a list of {"role": "candidate" | "interviewer", "content": str}; other fields are allowed and
ignored. Prints one JSON object: `n` and the rate of every check (over the transcripts where the check
applies: a null verdict does not count). `--verdicts` writes one line per transcript, in input order.

The checks, on each transcript (text is compared after dropping whitespace; see `core`):

closed_with_score   the last interviewer turn states 综合评分, a colon (full- or half-width), an integer
                    N with 0 <= N <= 100 written `N/100`, and later 点评 with non-empty text (after a
                    colon, usually: `点评：…`, `点评: …` and `点评 …` all count).
score               that N, or null.
premature_closing   null when the interview does not close with a score; otherwise whether it closes before
                    the candidate has answered MIN_ANSWERS_BEFORE_CLOSING of the interviewer's turns (a
                    closing in the first round, or right after one question, judges nothing).
within_10_rounds    at most 10 interviewer turns, the closing included.
repeated_question   some interviewer question is asked again: a question of a turn appears verbatim inside a
                    later interviewer turn. The questions of a turn: each run of consecutive sentences that
                    end in ？ or ? (sentences end at 。！？!?；; and newlines), and the run's part after its
                    last colon (the bank question after "我们先从Redis 开始："), each at least
                    MIN_QUESTION_CHARS characters without the question mark. Generic prompts ("能具体展开
                    讲讲吗？", "还有呢？": fewer than 3 characters left once the GENERIC words go) may
                    recur and are not questions.
moves_on_after_unknown
                    null when the candidate never declares not knowing; otherwise whether every interviewer
                    turn right after such an answer leaves the question: it is a closing, or it asks a
                    question the previous turn did not and none of the previous turn's questions appears
                    in it. An answer declares not knowing when it contains one of
                    UNKNOWN_PHRASES (不了解 / 不知道 / 不清楚 / 不会 / 没接触过 / 没用过 …), is at most
                    UNKNOWN_MAX_CHARS characters long, and none of its clauses says anything else (clauses
                    split at punctuation; a clause of fewer than 4 characters once FILLERS like 不好意思 /
                    这个 / 嗯 are dropped says nothing). "有 JDK 代理和 CGLIB 两种，区别我说不太清楚" is a
                    partial answer; "AOF 不会丢数据，因为……" is an answer.
degenerate          some interviewer turn contains U+FFFD (a broken character) or a loop: a phrase of
                    2-20 characters with a letter in it, repeated 3 times or more in a row ("Redis 的 Redis
                    的 Redis 的"; "1000000" and "……" are not loops).
score_consistent    null without a score, or unless the candidate declared not knowing on more than half of
                    their answers; then whether the score is below 60 (a candidate who mostly did not know
                    cannot pass).
follow_up_grounded  (a measure, not a check) of the interviewer turns that answer a substantive candidate
                    answer (not a declared unknown, at least 10 characters) and are not the closing, the
                    share that reuse the candidate's own words: a common run of at least 4 characters.
                    null when there is no such turn.

Untrusted text is bounded: a turn is judged on its first MAX_TURN_CHARS characters, a transcript on its
first MAX_MESSAGES messages; a transcript that is not in the schema gets `valid: false` and fails every
check. Nothing here raises on any input.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from scripts.common import read_records, write_jsonl
from scripts.prompts import MAX_INTERVIEWER_ROUNDS

MIN_QUESTION_CHARS = 6
MIN_ANSWERS_BEFORE_CLOSING = 2
UNKNOWN_MAX_CHARS = 40
MAX_TURN_CHARS = 20_000
MAX_MESSAGES = 400
PASS_SCORE = 60
UNKNOWN_PHRASES = re.compile(
    r"不了解|不太了解|不知道|不清楚|不太清楚|不会|不懂|不熟悉?|没(?:怎么|太)?(?:接触|用|学|研究|听说|做)过|答不上来?|想不起来|没有?概念")
# what is left of a generic prompt once these go is punctuation: it asks nothing of its own
GENERIC = re.compile(r"[？?，,。]|能不能|能|可以|请|再|具体|详细|展开|深入|讲讲|说说|讲一讲|说一说|讲|说|一下|一点|吗|呢|还有|"
                     r"然后|比如|举个例子|为什么|是什么|怎么样|怎么|你|我们|嗯|好")
CLAUSE = re.compile(r"[，,。.！!？?；;…、]+")
FILLERS = re.compile(r"不好意思|抱歉|对不起|这个|那个|这块|这方面|这部分|其实|说实话|我想想|就是|嗯|呃|啊|哦|额|我")
SCORE = re.compile(r"综合评分\s*[：:]\s*(\d{1,3})\s*/\s*100")
REVIEW = re.compile(r"点评\s*[：:]?\s*([^\s：:].*)", re.DOTALL)  # the colon is usual, not required
SENTENCE_END = re.compile(r"(?<=[。！？!?；;\n])")
LOOP = re.compile(r"(\S.{1,19}?)\1{2,}", re.DOTALL)
SPACE = re.compile(r"\s+")
LETTER = re.compile(r"[^\W\d_]")

CHECKS = ("closed_with_score", "premature_closing", "within_10_rounds", "repeated_question", "moves_on_after_unknown",
          "degenerate", "score_consistent")
MEASURES = ("follow_up_grounded",)
GOOD_WHEN = {"closed_with_score": True, "premature_closing": False, "within_10_rounds": True, "repeated_question": False,
             "moves_on_after_unknown": True, "degenerate": False, "score_consistent": True}


def core(text: str) -> str:
    return SPACE.sub("", text[:MAX_TURN_CHARS])


def questions(turn: str) -> set[str]:
    """The questions a turn asks, whitespace dropped: each run of consecutive sentences ending in ？/?
    (one question may take several: "什么是虚拟内存？为什么需要它？"), and its part after the last colon;
    only those of at least MIN_QUESTION_CHARS characters that are not a generic prompt."""
    found, run = set(), ""
    for sentence in SENTENCE_END.split(turn[:MAX_TURN_CHARS]) + [""]:
        sentence = core(sentence)
        if sentence.endswith(("？", "?")):
            run += sentence
            continue
        for candidate in (run, re.split(r"[：:]", run)[-1]) if run else ():
            if len(candidate) - 1 >= MIN_QUESTION_CHARS and len(GENERIC.sub("", candidate)) >= 3:
                found.add(candidate)
        run = ""
    return found


def repeats(turn: str, asked: set[str]) -> bool:
    """Does the turn contain one of the questions already asked (repeated_question)?"""
    text = core(turn)
    return any(q in text for q in asked)


def asks_again(turn: str, earlier: list[str]) -> bool:
    """Does the turn ask again a question of the earlier interviewer turns (repeated_question)?"""
    return repeats(turn, set().union(*map(questions, earlier)))


def declares_unknown(answer: str) -> bool:
    """At most UNKNOWN_MAX_CHARS characters, some clause says not knowing, and no clause says anything
    else ("有 JDK 代理和 CGLIB 两种，区别我说不太清楚" is a partial answer, not a declared unknown)."""
    text = core(answer)
    if len(text) > UNKNOWN_MAX_CHARS:
        return False
    clauses = [c for c in CLAUSE.split(text) if c]
    says_unknown = [UNKNOWN_PHRASES.search(c) is not None for c in clauses]
    content = [not unknown and len(FILLERS.sub("", c)) >= 4 for c, unknown in zip(clauses, says_unknown)]
    return any(says_unknown) and not any(content)


def closing_score(turn: str) -> int | None:
    """N of a closing `综合评分：N/100 … 点评：text`, or None when the turn is not such a closing."""
    text = turn[:MAX_TURN_CHARS]
    match = SCORE.search(text)
    if match is None or not 0 <= int(match.group(1)) <= 100:
        return None
    review = REVIEW.search(text, match.end())
    return int(match.group(1)) if review and review.group(1).strip() else None


def degenerate_turn(turn: str) -> bool:
    text = turn[:MAX_TURN_CHARS]
    # a loop must repeat words, not digits or dots ("limit 1000000" and "……" are fine)
    return "\ufffd" in text or any(LETTER.search(m.group(1)) for m in LOOP.finditer(text))


def shares_words(reply: str, answer: str, span: int = 4) -> bool:
    reply, answer = core(reply), core(answer)
    return any(answer[i:i + span] in reply for i in range(len(answer) - span + 1))


def leaves_question(reply: str, question_turn: str) -> bool:
    """Does the reply leave the question of question_turn (moves_on_after_unknown): it is a closing, or it
    asks a question question_turn did not, and none of question_turn's questions appears in it?"""
    asked_before = questions(question_turn)
    return closing_score(reply) is not None or (bool(questions(reply) - asked_before)
                                                and not repeats(reply, asked_before))


def substantive(answer: str) -> bool:
    """An answer a follow-up can build on (follow_up_grounded): not a declared unknown, >= 10 characters."""
    return not declares_unknown(answer) and len(core(answer)) >= 10


def turn_checks(messages: list[tuple[str, str]], reply: str) -> dict:
    """The checks on one interviewer turn: `reply`, written after `messages` (the interview so far as
    [(role, text)], ending with the candidate's answer). The per-turn form of `verdict`, for rewards
    (reward/interview.py): the same functions decide.
      closing      the reply is a closing with a score (closed_with_score's rule); score: its N or None
      asks         the reply asks a question of its own (questions(): not a generic prompt)
      repeated     it asks again a question of an earlier interviewer turn (repeated_question)
      moved_on     None unless the last answer declares not knowing; then leaves_question
      degenerate   a loop or a broken character (degenerate)
      grounded     None unless the last answer is substantive and the reply is no closing; then whether
                   the reply reuses the candidate's words (follow_up_grounded)"""
    reply = reply if isinstance(reply, str) else ""
    earlier = [text for role, text in messages[:MAX_MESSAGES] if role == "interviewer"]
    answer = messages[-1][1] if messages and messages[-1][0] == "candidate" and earlier else None
    score = closing_score(reply)
    return {
        "closing": score is not None, "score": score,
        "asks": bool(questions(reply)),
        "repeated": asks_again(reply, earlier),
        "moved_on": leaves_question(reply, earlier[-1]) if answer is not None and declares_unknown(answer) else None,
        "degenerate": degenerate_turn(reply),
        "grounded": shares_words(reply, answer) if answer is not None and substantive(answer) and score is None
        else None,
    }


def messages_of(transcript: Any) -> list[tuple[str, str]] | None:
    """[(role, content)] of a transcript in the schema, or None."""
    if not isinstance(transcript, dict) or not isinstance(transcript.get("messages"), list):
        return None
    out = []
    for message in transcript["messages"][:MAX_MESSAGES]:
        if not isinstance(message, dict) or message.get("role") not in ("candidate", "interviewer") \
                or not isinstance(message.get("content"), str):
            return None
        out.append((message["role"], message["content"]))
    return out


def verdict(transcript: Any) -> dict:
    """Every check and measure of one transcript (see the module docstring)."""
    transcript_id = transcript.get("id") if isinstance(transcript, dict) else None
    messages = messages_of(transcript)
    if messages is None:
        return {"id": transcript_id, "valid": False, "interviewer_turns": 0, "score": None,
                **{check: not GOOD_WHEN[check] for check in CHECKS}, "follow_up_grounded": None}
    interviewer = [(i, text) for i, (role, text) in enumerate(messages) if role == "interviewer"]
    score = closing_score(interviewer[-1][1]) if interviewer else None

    repeated, asked = False, set()
    for _, text in interviewer:
        if repeats(text, asked):
            repeated = True
            break
        asked |= questions(text)

    answers = [(i, text) for i, (role, text) in enumerate(messages) if role == "candidate"
               and i > 0 and messages[i - 1][0] == "interviewer"]  # answers to a question (not the greeting)
    unknown_at = [i for i, text in answers if declares_unknown(text)]
    moved_on = []
    for i in unknown_at:
        reply = next((text for j, (role, text) in enumerate(messages) if j > i and role == "interviewer"), None)
        if reply is not None:
            moved_on.append(leaves_question(reply, messages[i - 1][1]))

    grounded = []
    for i, text in answers:
        if not substantive(text) or i + 1 >= len(messages):
            continue
        role, reply = messages[i + 1]
        if role == "interviewer" and closing_score(reply) is None:
            grounded.append(shares_words(reply, text))

    consistent = None
    if score is not None and answers and len(unknown_at) * 2 > len(answers):
        consistent = score < PASS_SCORE
    return {
        "id": transcript_id, "valid": True, "interviewer_turns": len(interviewer),
        "closed_with_score": score is not None, "score": score,
        "premature_closing": None if score is None else
        sum(i < interviewer[-1][0] for i, _ in answers) < MIN_ANSWERS_BEFORE_CLOSING,
        "within_10_rounds": len(interviewer) <= MAX_INTERVIEWER_ROUNDS,
        "repeated_question": repeated,
        "moves_on_after_unknown": all(moved_on) if moved_on else None,
        "degenerate": any(degenerate_turn(text) for _, text in interviewer),
        "score_consistent": consistent,
        "follow_up_grounded": round(sum(grounded) / len(grounded), 4) if grounded else None,
    }


def passes(v: dict) -> bool:
    """Does a verdict pass every check that applies?"""
    return v["valid"] and all(v[c] is None or v[c] == GOOD_WHEN[c] for c in CHECKS)


def rates(verdicts: list[dict]) -> dict:
    """{"n", every check: the share of True among transcripts where it applies (null if none), every
    measure: its mean}."""
    out: dict[str, Any] = {"n": len(verdicts)}
    for key in CHECKS + MEASURES:
        values = [v[key] for v in verdicts if v[key] is not None]
        out[key] = round(sum(float(x) for x in values) / len(values), 4) if values else None
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transcripts", type=Path, required=True, help="JSONL (or a JSON list) of transcripts")
    parser.add_argument("--verdicts", type=Path, help="write one verdict per transcript here (JSONL)")
    args = parser.parse_args(argv)
    verdicts = [verdict(record) for _, record in read_records(args.transcripts)]
    if args.verdicts:
        write_jsonl(args.verdicts, verdicts)
    print(json.dumps(rates(verdicts), ensure_ascii=False))
    invalid = sum(not v["valid"] for v in verdicts)
    if invalid:
        print(f"warning: {invalid} transcript(s) not in the schema (id + messages of candidate/interviewer "
              "turns): every check counts as failed for them", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
