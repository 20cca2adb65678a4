"""make serve: LLaMA-Factory's own OpenAI-compatible server (`llamafactory-cli api`'s app) for a recipe's
model, with the guards a shared endpoint needs.

    make serve                                                   # the interviewer recipe's trained adapter
    make serve RECIPE=configs/fc_smollm2_lora_sft_cpu.yaml       # the tool caller (OpenAI tool_calls)
    API_KEY=secret API_PORT=8001 make serve SERVE_ARGS="--merged runs/interview_smollm2_cpu/merged"
    python -m scripts.serve --recipe R [--adapter DIR | --merged DIR | --base] [--dtype auto|bf16|fp32]

What is LLaMA-Factory's and what is added here:
- The app is llamafactory.api.app.create_app: /v1/models, /v1/chat/completions (streamed or not, tools in
  and OpenAI tool_calls out through the template's own tool format), API_KEY checked as a Bearer token
  (401 without it). Generation is its HF engine, one request at a time (MAX_CONCURRENT, default 1);
  requests beyond it wait, none is dropped.
- Added in front of it (Guard), after the key check so a caller without the key learns nothing: a request
  for another model than the served one is refused (404, model_not_found; LLaMA-Factory answers any
  name), a prompt longer than the recipe's cutoff_len (the longest the model was trained on) is refused
  (400, context_length_exceeded; LLaMA-Factory would run it, or fail inside the model with a 500), a body
  over --max-body-bytes is refused (413). Malformed JSON is FastAPI's 422. Errors carry OpenAI's
  {"error": {"message", "type", "code"}}.
- One extension, vLLM's: `"continue_final_message": true` with a final assistant message continues that
  message instead of starting a new one. This is how a client imposes the start of a turn (make chat and
  make simulate's steered moves over --endpoint); the answer's content is the continuation only. With it,
  vLLM's `"bad_words": [...]` keeps those strings out of the continuation (the closing's review is written
  without a question mark, as in-process).
- The interviewer's in-turn loop guard (eval/generate.py NoRepeatNewNgrams: no 6-token run repeated within
  a turn, the prompt not counted), as make chat and make simulate decode in-process: on by default for an
  interview recipe, off for the others (a parallel tool call repeats its own JSON legitimately);
  --no-repeat-ngram N sets it, 0 turns it off.
- Binds API_HOST (default 127.0.0.1, where LLaMA-Factory's default is 0.0.0.0): the server runs whatever
  model it is given for anyone who can reach it, with no rate limit; expose it on purpose (API_HOST=0.0.0.0,
  with API_KEY set), not by default.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path

from eval.generate import (
    WholeCharacters,
    banned_sequences,
    complete_prefix,
    decode_complete,
    generation_controls,
    pick_dtype,
    require_adapter,
)
from eval.interview_session import NO_REPEAT_NGRAM
from scripts.common import REPO_ROOT, relative_to_repo
from scripts.recipes import read_recipe, training_dataset

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
MAX_BODY_BYTES = 1 << 20  # 1 MiB: far above any prompt within a CPU recipe's cutoff
DEFAULT_MAX_NEW_TOKENS = 512  # a request without max_tokens (LLaMA-Factory's default is 1024)
CHAT_PATH = "/v1/chat/completions"


@dataclass
class Served:
    """What the server runs: LLaMA-Factory's inference arguments and what the guard checks."""
    name: str  # the model id clients send (API_MODEL_NAME)
    args: dict  # llamafactory ChatModel arguments
    max_prompt_tokens: int
    description: str
    no_repeat_ngram: int = 0


def served_model(recipe_path: Path, adapter: Path | None, merged: Path | None, base: bool, dtype: str,
                 max_new_tokens: int, no_repeat_ngram: int | None = None) -> Served:
    recipe = read_recipe(recipe_path)
    if no_repeat_ngram is None:
        no_repeat_ngram = NO_REPEAT_NGRAM if training_dataset(recipe).startswith("interview") else 0
    torch_dtype, why = pick_dtype(dtype)
    args = {"template": recipe["template"], "infer_backend": "huggingface", "trust_remote_code": False,
            "infer_dtype": "bfloat16" if "bf16" in why else "float32", "max_new_tokens": max_new_tokens}
    if merged is not None:
        if not (merged / "config.json").is_file():
            raise SystemExit(f"error: --merged {merged}: no config.json (make merge writes one)")
        args["model_name_or_path"] = str(merged)
        description = f"{relative_to_repo(merged)} (merged)"
    else:
        args["model_name_or_path"] = recipe["model_name_or_path"]
        description = recipe["model_name_or_path"]
        if not base:
            trained = require_adapter(adapter or REPO_ROOT / recipe["output_dir"],
                                      f"train first: make sft RECIPE={relative_to_repo(recipe_path)}, or --base")
            args["adapter_name_or_path"] = str(trained)
            description += f" + {relative_to_repo(trained)}"
    name = os.environ.get("API_MODEL_NAME") or Path(recipe_path).stem
    guard = f", no {no_repeat_ngram}-token run repeated within a reply" if no_repeat_ngram else ""
    return Served(name, args, int(recipe.get("cutoff_len", 2048)), f"{description}, {why}{guard}", no_repeat_ngram)


def guard_generation(model, tokenizer, no_repeat_ngram: int) -> None:
    """Every model.generate of the engine (plain, continued) decodes as make chat does in-process: the loop
    guard (no_repeat_ngram, 0: off), no broken character (WholeCharacters), and a reply cut by its token
    budget inside a multi-byte character ends before that character instead of with U+FFFD (the cut
    byte-tokens become padding, which decoding skips)."""
    import torch

    generate = model.generate
    whole_characters = WholeCharacters(tokenizer)

    def guarded(*args, **kwargs):
        inputs = kwargs.get("inputs", kwargs.get("input_ids"))
        if inputs is None or "logits_processor" in kwargs or "streamer" in kwargs:
            return generate(*args, **kwargs)
        kwargs.update(generation_controls(inputs.shape[1], no_repeat_ngram or None, whole_characters=whole_characters))
        out = generate(*args, **kwargs)
        if isinstance(out, torch.Tensor) and tokenizer.pad_token_id is not None:
            width = inputs.shape[1]
            for row in out:
                new = row[width:].tolist()
                keep, _ = complete_prefix(tokenizer, new)
                if keep < len(new):
                    row[width + keep:] = tokenizer.pad_token_id
        return out

    model.generate = guarded


def openai_error(status: int, message: str, kind: str, code: str | None = None) -> tuple[int, bytes]:
    return status, json.dumps({"error": {"message": message, "type": kind, "param": None, "code": code}},
                              ensure_ascii=False).encode("utf-8")


class Guard:
    """ASGI middleware in front of LLaMA-Factory's app: the model name, the prompt length and the body size
    of chat completions, and the continue_final_message extension. Every other request passes untouched."""

    def __init__(self, app, chat_model, served: Served, api_key: str | None, max_body_bytes: int = MAX_BODY_BYTES):
        self.app, self.chat_model, self.served = app, chat_model, served
        self.api_key, self.max_body_bytes = api_key, max_body_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != CHAT_PATH:
            return await self.app(scope, receive, send)
        body, too_large = b"", False
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > self.max_body_bytes:
                too_large = True
                break
            if not message.get("more_body"):
                break
        if too_large:
            return await respond(send, *openai_error(413, f"request body over {self.max_body_bytes} bytes",
                                                     "invalid_request_error", "request_too_large"))
        if not self.authorized(scope):
            return await self.app(scope, replay(body), send)  # LLaMA-Factory's own 401
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            return await self.app(scope, replay(body), send)  # FastAPI's 422
        if not isinstance(payload, dict):
            return await self.app(scope, replay(body), send)
        if payload.get("model") != self.served.name:
            return await respond(send, *openai_error(
                404, f"The model `{payload.get('model')}` does not exist; this server serves `{self.served.name}`",
                "invalid_request_error", "model_not_found"))
        continuing = bool(payload.get("continue_final_message"))
        try:
            ids, prefix = self.rendered(payload)  # once: for the length check and the continuation
        except Exception as error:
            if not continuing:  # malformed messages: LLaMA-Factory's own validation answers them (400/422)
                return await self.app(scope, replay(body), send)
            return await respond(send, *openai_error(getattr(error, "status_code", 400),
                                                     f"continue_final_message: {getattr(error, 'detail', error)}",
                                                     "invalid_request_error"))
        if len(ids) > self.served.max_prompt_tokens:
            return await respond(send, *openai_error(
                400, f"the prompt is {len(ids)} tokens; this model takes at most {self.served.max_prompt_tokens} "
                "(its recipe's cutoff_len)", "invalid_request_error", "context_length_exceeded"))
        if continuing:
            return await respond(send, *await self.continue_final_message(payload, ids, prefix))
        return await self.app(scope, replay(body), send)

    def authorized(self, scope) -> bool:
        if not self.api_key:
            return True
        headers = dict(scope.get("headers") or [])
        return headers.get(b"authorization", b"").decode("latin-1") == f"Bearer {self.api_key}"

    def rendered(self, payload: dict) -> tuple[list[int], str]:
        """(prompt ids as the engine renders them, the final assistant message to continue or "")."""
        from llamafactory.api.chat import _process_request
        from llamafactory.api.protocol import ChatCompletionRequest

        messages, prefix = list(payload.get("messages") or []), ""
        if payload.get("continue_final_message") and messages and isinstance(messages[-1], dict) \
                and messages[-1].get("role") == "assistant":
            prefix = str(messages.pop()["content"] or "")
        request = ChatCompletionRequest.model_validate({**payload, "messages": messages, "stream": False})
        turns, system, tools, *_ = _process_request(request)
        engine = self.chat_model.engine
        ids, _ = engine.template.encode_oneturn(engine.tokenizer, turns + [{"role": "assistant", "content": ""}],
                                                system, tools)
        return ids + engine.tokenizer.encode(prefix, add_special_tokens=False), prefix

    async def continue_final_message(self, payload: dict, ids: list[int], prefix: str) -> tuple[int, bytes]:
        bad_words = payload.get("bad_words") or []
        if not isinstance(bad_words, list) or not all(isinstance(w, str) and w for w in bad_words[:64]) \
                or len(bad_words) > 64:
            return openai_error(400, "bad_words: a list of at most 64 non-empty strings", "invalid_request_error")
        if payload.get("stream") or payload.get("tools"):
            return openai_error(400, "continue_final_message: not with stream or tools", "invalid_request_error")
        if not prefix:
            return openai_error(400, "continue_final_message needs a final assistant message",
                                "invalid_request_error")
        engine = self.chat_model.engine
        async with engine.semaphore:  # one generation at a time, as the engine's own requests
            text, finish, count = await asyncio.get_running_loop().run_in_executor(
                None, partial(self.generate, ids, payload, bad_words))
        body = {"id": f"chatcmpl-continue-{len(ids)}", "object": "chat.completion", "created": 0,
                "model": self.served.name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
                "usage": {"prompt_tokens": len(ids), "completion_tokens": count, "total_tokens": len(ids) + count}}
        return 200, json.dumps(body, ensure_ascii=False).encode("utf-8")

    def generate(self, ids: list[int], payload: dict, bad_words: list[str]) -> tuple[str, str, int]:
        import torch

        engine = self.chat_model.engine
        model, tokenizer = engine.model, engine.tokenizer
        stop = engine.template.get_stop_token_ids(tokenizer)
        temperature = float(payload.get("temperature") or 0.0)
        budget = int(payload.get("max_tokens") or payload.get("max_completion_tokens")
                     or engine.generating_args["max_new_tokens"])
        sampling = {"do_sample": True, "temperature": temperature, "top_p": float(payload.get("top_p") or 1.0)} \
            if temperature > 0 else {"do_sample": False}
        if bad_words:
            sampling["bad_words_ids"] = self.banned(tuple(bad_words))
        inputs = torch.tensor([ids], device=model.device)
        with torch.inference_mode():
            out = model.generate(input_ids=inputs, attention_mask=torch.ones_like(inputs), max_new_tokens=budget,
                                 eos_token_id=stop, pad_token_id=tokenizer.pad_token_id or stop[0], **sampling)
        new = out[0, len(ids):].tolist()
        # stopped early, or at the budget on a stop token that cannot be guard_generation's padding (which
        # replaces a cut character's tokens: with padding among the stop tokens, a full-length reply is a cut)
        stopped = len(new) < budget or (bool(new) and new[-1] in stop and tokenizer.pad_token_id not in stop)
        return decode_complete(tokenizer, new), "stop" if stopped else "length", len(new)


    @lru_cache(maxsize=8)  # noqa: B019 (one Guard per process)
    def banned(self, words: tuple[str, ...]) -> list[list[int]]:
        return banned_sequences(self.chat_model.engine.tokenizer, list(words))


def replay(body: bytes):
    """An ASGI receive() that gives the body already read, then waits as a connection would."""
    sent = False

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client's disconnect is not watched here

    return receive


async def respond(send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def free_port() -> int:
    with socket.socket() as s:
        s.bind((DEFAULT_HOST, 0))
        return s.getsockname()[1]


@contextmanager
def background_server(recipe: str | Path, options: list[str], log: Path, key: str | None = None,
                      startup_s: float = 300.0):
    """A `python -m scripts.serve` process on a free local port, for tests and benchmarks; yields its base
    URL once /v1/models answers, and stops it on exit."""
    import httpx

    port = free_port()
    env = dict(os.environ, API_HOST=DEFAULT_HOST, API_PORT=str(port), HF_HUB_OFFLINE="1",
               PYTHONPATH=str(REPO_ROOT))
    env.pop("API_KEY", None)
    env.update({"API_KEY": key} if key else {})
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "scripts.serve", "--recipe", str(recipe), *options],
                                   cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://{DEFAULT_HOST}:{port}/v1"
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        deadline = time.monotonic() + startup_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited ({process.returncode}):\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/models", headers=headers, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not answer in {startup_s:.0f} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", type=Path, required=True, help="the experiment (its model, template, cutoff)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--adapter", type=Path, help="LoRA adapter (default: the recipe's output_dir)")
    which.add_argument("--merged", type=Path, help="a merged model folder (make merge) instead of base + adapter")
    which.add_argument("--base", action="store_true", help="the recipe's base model, untrained")
    parser.add_argument("--dtype", default="auto", help="auto | bf16 | fp32 (auto: bf16 where the hardware has it)")
    parser.add_argument("--max-new-tokens", type=int, default=DEFAULT_MAX_NEW_TOKENS,
                        help="for requests without max_tokens")
    parser.add_argument("--max-body-bytes", type=int, default=MAX_BODY_BYTES)
    parser.add_argument("--no-repeat-ngram", type=int, help=f"loop guard (default: {NO_REPEAT_NGRAM} for an "
                        "interview recipe, 0 (off) for the others)")
    args = parser.parse_args(argv)

    served = served_model(args.recipe, args.adapter, args.merged, args.base, args.dtype, args.max_new_tokens,
                          args.no_repeat_ngram)
    os.environ["API_MODEL_NAME"] = served.name  # LLaMA-Factory's /v1/models lists it
    host, port = os.environ.get("API_HOST", DEFAULT_HOST), int(os.environ.get("API_PORT", DEFAULT_PORT))
    import uvicorn
    from llamafactory.api.app import create_app
    from llamafactory.chat import ChatModel

    chat_model = ChatModel(served.args)
    guard_generation(chat_model.engine.model, chat_model.engine.tokenizer, served.no_repeat_ngram)
    app = Guard(create_app(chat_model), chat_model, served, os.environ.get("API_KEY") or None, args.max_body_bytes)
    key = "API_KEY required" if os.environ.get("API_KEY") else "no API_KEY: anyone who can reach it may use it"
    print(f"serve: {served.description} as model `{served.name}` on http://{host}:{port}/v1 ({key}; "
          f"prompts up to {served.max_prompt_tokens} tokens)", file=sys.stderr, flush=True)
    uvicorn.run(app, host=host, port=port, log_level=os.environ.get("API_LOG_LEVEL", "warning"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
