"""The interviewer behind an OpenAI-compatible endpoint: make serve, vLLM, Ollama's /v1, ... The same
interview loop as in-process (eval/interview_session.py), through the official `openai` client.

    python -m eval.simulate --recipe R --endpoint http://127.0.0.1:8000/v1 [--api-key KEY] [--model NAME]
    python -m scripts.chat --recipe R --endpoint http://127.0.0.1:8000/v1

What differs from in-process generation, and why:
- Prompts are sent as chat messages (system + turns, as scripts/interview_format.py renders them); the
  server applies its own chat template, which must be the recipe's (make serve's is).
- A steered move's prefill is sent as a final assistant message with `continue_final_message: true`
  (vLLM's extension; make serve implements it). An endpoint without it answers 400 or writes a new turn
  after the prefill: use --modes free there.
- Greedy is temperature 0. The server's own decoding applies: make serve adds the in-turn loop guard
  (NoRepeatNewNgrams) to an interview recipe's replies; vLLM and Ollama do not.
- The closing's score cannot be constrained to digits: the model continues "综合评分：" for 4 tokens and its
  first number, clamped to 10..ceiling, is the score; without a number the score is min(59, ceiling) and
  counted in `score_fallbacks`. The review is asked for without question marks through vLLM's
  `bad_words` (make serve implements it); where the server ignores it, its sentences that ask something
  are dropped (without_questions).
- Requests of one round go out concurrently (--concurrency); each is deterministic at temperature 0, so
  the order they are served in does not change the interview.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from eval.interview_policy import PASS_SCORE
from eval.interview_session import QUESTION_MARKS, Closing, Sampling, TurnRequest
from scripts.interview_format import interviewer_prompt

SCORE_TOKENS = 4
REQUEST_TIMEOUT_S = 600.0  # one CPU generation waits behind the others on a one-at-a-time server
SENTENCE = re.compile(r"[^。！!；;？?\n]*(?:[。！!；;？?\n]|$)")


@dataclass(frozen=True)
class Endpoint:
    url: str
    model: str

    def describe(self) -> dict:
        return {"kind": "openai-compatible endpoint", "url": self.url, "model": self.model}


def connect(url: str, api_key: str | None = None, model: str | None = None):
    """(openai client, Endpoint); model defaults to the first one the endpoint lists. A clear error when the
    endpoint cannot be reached, refuses the key or does not serve the model."""
    import openai

    client = openai.OpenAI(base_url=url, api_key=api_key or "none", timeout=REQUEST_TIMEOUT_S, max_retries=0)
    try:
        served = [m.id for m in client.models.list()]
    except openai.AuthenticationError:
        raise SystemExit(f"error: {url}: the API key was refused (--api-key)") from None
    except openai.APIConnectionError as error:
        raise SystemExit(f"error: {url}: cannot connect ({error.__cause__ or error}); is the server up (make serve)?") from None
    except openai.APIStatusError as error:
        raise SystemExit(f"error: {url}/models: HTTP {error.status_code}") from None
    if model is None:
        if not served:
            raise SystemExit(f"error: {url} lists no model; name one with --model")
        model = served[0]
    elif served and model not in served:
        raise SystemExit(f"error: {url} does not serve {model!r} (it lists {', '.join(served)})")
    return client, Endpoint(url, model)


def without_questions(text: str) -> str:
    """The text without its sentences that ask something."""
    kept = [s for s in SENTENCE.findall(text) if s and "?" not in s and "？" not in s]
    return "".join(kept).strip()


def first_score(text: str, ceiling: int) -> int | None:
    match = re.match(r"\s*(\d{1,3})", text)
    return max(10, min(ceiling, int(match.group(1)))) if match else None


class EndpointInterviewer(Closing):
    """Interviewer's interface (write, score, close) over an OpenAI-compatible endpoint."""

    def __init__(self, client, endpoint: Endpoint, fmt: str, *, sampling: Sampling | None = None,
                 max_new_tokens: int = 96, seed: int = 0, concurrency: int = 4):
        self.client, self.endpoint, self.fmt = client, endpoint, fmt
        self.sampling = sampling or Sampling()
        self.max_new_tokens, self.seed, self.concurrency, self.calls = max_new_tokens, seed, concurrency, 0
        self.score_fallbacks = 0

    def messages(self, request: TurnRequest) -> list[dict]:
        system, chat = interviewer_prompt(self.fmt, request.messages, request.job, request.topics)
        prefill = [{"role": "assistant", "content": request.prefill}] if request.prefill else []
        return [{"role": "system", "content": system}, *chat, *prefill]

    def complete(self, request: TurnRequest, max_tokens: int, no_questions: bool = False) -> str:
        """The model's words after the request's prefill."""
        import openai

        options = {"temperature": 0.0} if self.sampling.greedy else {
            "temperature": self.sampling.temperature, "top_p": self.sampling.top_p, "seed": self.seed + self.calls}
        self.calls += 1
        extra = {"continue_final_message": True, "add_generation_prompt": False} if request.prefill else {}
        if no_questions:
            extra["bad_words"] = QUESTION_MARKS
        try:
            response = self.client.chat.completions.create(
                model=self.endpoint.model, messages=self.messages(request), max_tokens=max_tokens,
                extra_body=extra or None, **options)
        except openai.APIStatusError as error:
            hint = " (steered moves need continue_final_message: use --modes free here)" if request.prefill else ""
            raise SystemExit(f"error: {self.endpoint.url}: HTTP {error.status_code}: {error.message}{hint}") from None
        except openai.APIConnectionError as error:
            raise SystemExit(f"error: {self.endpoint.url}: connection lost ({error.__cause__ or error})") from None
        return response.choices[0].message.content or ""

    def write(self, requests: list[TurnRequest], max_new_tokens: int | None = None,
              no_questions: bool = False) -> list[str]:
        budget = max_new_tokens or self.max_new_tokens
        workers = self.concurrency if self.sampling.greedy else 1  # sampled: seeds in request order
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            texts = list(pool.map(lambda r: self.complete(r, budget, no_questions), requests))
        if no_questions:
            texts = [without_questions(t) for t in texts]
        return [r.prefill + t.strip() for r, t in zip(requests, texts)]

    def score(self, request: TurnRequest, ceiling: int = 99) -> int:
        score = first_score(self.complete(request, SCORE_TOKENS), ceiling)
        if score is None:
            self.score_fallbacks += 1
            return min(PASS_SCORE - 1, ceiling)
        return score
