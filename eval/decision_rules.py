"""Rule baseline for follow-up decisions: seed 001's annotation guide, applied literally.

    NEXT_TOPIC or END at depth 3: END when the answer is good (longer than 30 characters, hesitation
                 below 0.5, no "不了解"), else NEXT_TOPIC;
    NEXT_TOPIC:  the candidate says 不会/不了解/不清楚 (scripts/speech.py), or the answer is shorter
                 than 20 characters, or hesitation is above 0.7;
    FOLLOW_UP:   everything else (the answer has content and the topic can go deeper).
It reads the four features plus the "don't know" phrases, nothing else; what it cannot see (whether
the topic is exhausted, an annotator's judgement on a hesitant answer) is where it errs.
"""

from __future__ import annotations

from scripts.speech import says_unknown


def decide(answer: str, context: dict) -> str:
    depth = context.get("follow_up_depth", 0)
    length = context.get("answer_length", len(answer))
    hesitation = context.get("hesitation_score", 0.0)
    good = length > 30 and hesitation < 0.5 and not says_unknown(answer)
    if depth >= 3:
        return "END" if good else "NEXT_TOPIC"
    if says_unknown(answer) or length < 20 or hesitation > 0.7:
        return "NEXT_TOPIC"
    return "FOLLOW_UP"
