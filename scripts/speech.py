"""Speech-like features of an answer's text, shared by the data generator and the interview chat.

filler_count counts filler words (嗯 / 那个 / 就是 / 呃 / 然后 / 这个 / 啊) the way an ASR transcript
shows them; answer_length is the number of non-space characters. hesitation_score in real use comes
from the audio (pauses, speech rate); text_hesitation estimates it from the transcript alone.
"""

from __future__ import annotations

import re

FILLERS = ("嗯", "那个", "就是", "呃", "然后", "这个", "啊")
FILLER_PATTERN = re.compile("|".join(sorted(FILLERS, key=len, reverse=True)))
PAUSE = re.compile(r"……|\.\.\.")
UNKNOWN = re.compile(r"不会|不了解|不清楚|不知道|没接触过|没用过|没研究过")


def filler_count(text: str) -> int:
    return len(FILLER_PATTERN.findall(text))


def answer_length(text: str) -> int:
    return len(re.sub(r"\s", "", text))


def says_unknown(text: str) -> bool:
    return bool(UNKNOWN.search(text))


def text_hesitation(text: str) -> float:
    """0..1 from fillers and pauses per character (a transcript-only stand-in for the audio score)."""
    length = max(answer_length(text), 1)
    raw = 0.15 + 0.1 * filler_count(text) + 0.12 * len(PAUSE.findall(text)) + (0.2 if length < 12 else 0.0)
    return round(min(1.0, max(0.0, raw)), 2)
