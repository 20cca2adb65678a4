"""make serve: LLaMA-Factory's OpenAI-compatible server behind the repo's guard, talked to with the official
`openai` client: chat, streaming, tool calls, 8 concurrent clients, bad requests, the key, and make simulate /
make chat over --endpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest
import yaml

from eval.endpoint import first_score, without_questions
from eval.toolcall import score
from scripts.serve import background_server, free_port
from tests.conftest import REPO

KEY = "test-key"
INTERVIEW_RECIPE = "configs/interview_smollm2_lora_sft_cpu.yaml"
FC_RECIPE = "configs/fc_smollm2_lora_sft_cpu.yaml"
CLI = str(Path(sys.executable).parent / "llamafactory-cli")
ENV = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO), TOKENIZERS_PARALLELISM="false")


def server(recipe: str, *options: str, key: str | None = KEY, log: Path):
    return background_server(recipe, ["--dtype", "fp32", *options], log, key)


@pytest.fixture(scope="module")
def interviewer_server(smollm2, tmp_path_factory):
    """The base SmolLM2 under the interview recipe (an untrained model: the serving is what is tested)."""
    with server(INTERVIEW_RECIPE, "--base", log=tmp_path_factory.mktemp("serve") / "log") as url:
        yield url


def client(url: str, key: str | None = KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key=key or "none", max_retries=0, timeout=300)


MODEL = Path(INTERVIEW_RECIPE).stem
HELLO = [{"role": "user", "content": "面试官：TCP 三次握手是什么？\n候选人：不了解。"}]


@pytest.mark.slow
def test_chat_stream_and_models_with_the_official_client(interviewer_server):
    c = client(interviewer_server)
    assert [m.id for m in c.models.list()] == [MODEL]
    reply = c.chat.completions.create(model=MODEL, messages=HELLO, temperature=0, max_tokens=12)
    text = reply.choices[0].message.content
    assert text and reply.usage.completion_tokens <= 12 and reply.choices[0].finish_reason in ("stop", "length")
    again = c.chat.completions.create(model=MODEL, messages=HELLO, temperature=0, max_tokens=12)
    assert again.choices[0].message.content == text  # greedy: the same answer
    chunks = [ch.choices[0].delta.content for ch in c.chat.completions.create(
        model=MODEL, messages=HELLO, temperature=0, max_tokens=12, stream=True) if ch.choices]
    assert len(chunks) > 2 and "".join(x or "" for x in chunks).strip() == text.strip()


@pytest.mark.slow
def test_bad_requests_are_4xx_and_the_server_keeps_serving(interviewer_server):
    c = client(interviewer_server)
    with pytest.raises(openai.AuthenticationError):
        client(interviewer_server, key=None).chat.completions.create(model=MODEL, messages=HELLO, max_tokens=2)
    with pytest.raises(openai.AuthenticationError):  # the key is checked before the model name
        client(interviewer_server, key="wrong").chat.completions.create(model="other", messages=HELLO, max_tokens=2)
    with pytest.raises(openai.NotFoundError, match="model_not_found"):
        c.chat.completions.create(model="gpt-4o", messages=HELLO, max_tokens=2)
    cutoff = yaml.safe_load((REPO / INTERVIEW_RECIPE).read_text(encoding="utf-8"))["cutoff_len"]
    with pytest.raises(openai.BadRequestError, match="context_length_exceeded"):
        c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "缓存" * cutoff}], max_tokens=2)
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    assert httpx.post(f"{interviewer_server}/chat/completions", content=b'{"model": ', headers=headers).status_code == 422
    assert httpx.post(f"{interviewer_server}/chat/completions", headers=headers,
                      json={"model": MODEL, "messages": [{"role": "assistant", "content": "x"}]}).status_code == 400
    big = httpx.post(f"{interviewer_server}/chat/completions", headers=headers, content=b"x" * (2 << 20))
    assert big.status_code == 413
    reply = c.chat.completions.create(model=MODEL, messages=HELLO, temperature=0, max_tokens=4)
    assert reply.choices[0].message.content  # still serving


@pytest.mark.slow
def test_eight_concurrent_clients_are_all_answered(interviewer_server):
    def ask(k: int) -> str:
        messages = [{"role": "user", "content": f"面试官：第{k}个问题：索引是什么？\n候选人：B+ 树。"}]
        return client(interviewer_server).chat.completions.create(
            model=MODEL, messages=messages, temperature=0, max_tokens=6).choices[0].message.content

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(ask, range(8)))
    assert len(answers) == 8 and all(answers)
    assert answers[0] == ask(0)  # queued requests are answered as if alone


@pytest.mark.slow
def test_continue_final_message_and_bad_words(interviewer_server):
    c = client(interviewer_server)
    prefix = [*HELLO, {"role": "assistant", "content": "没关系，我们换个话题。"}]
    cont = c.chat.completions.create(model=MODEL, messages=prefix, temperature=0, max_tokens=16,
                                     extra_body={"continue_final_message": True, "add_generation_prompt": False})
    text = cont.choices[0].message.content
    assert text and not text.startswith("没关系")  # the continuation only
    plain = c.chat.completions.create(model=MODEL, messages=HELLO, temperature=0, max_tokens=16)
    assert plain.choices[0].message.content != text  # a new turn is not a continuation
    asked = c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Ask me three questions."},
                                                             {"role": "assistant", "content": "1."}],
                                      temperature=0, max_tokens=40,
                                      extra_body={"continue_final_message": True, "bad_words": ["?", "？"]})
    assert "?" not in asked.choices[0].message.content and "？" not in asked.choices[0].message.content
    with pytest.raises(openai.BadRequestError):
        c.chat.completions.create(model=MODEL, messages=prefix, max_tokens=2,
                                  extra_body={"continue_final_message": True, "bad_words": "?"})


def test_endpoint_helpers():
    assert without_questions("回答清楚。还需要补充什么？基础扎实！") == "回答清楚。基础扎实！"
    assert without_questions("为什么？") == ""
    assert first_score(" 85/100", 99) == 85 and first_score("100", 59) == 59 and first_score("5", 99) == 10
    assert first_score("很好", 99) is None


@pytest.mark.slow
def test_simulate_and_chat_over_the_endpoint(interviewer_server, tmp_path):
    scripted = tmp_path / "candidates.jsonl"
    scripted.write_text(json.dumps({"id": "c1", "answers": ["不了解", "TCP 用序号和确认保证可靠。"]},
                                   ensure_ascii=False) + "\n", encoding="utf-8")
    out = tmp_path / "sim"
    run = subprocess.run([sys.executable, "-m", "eval.simulate", "--recipe", INTERVIEW_RECIPE, "--endpoint",
                          interviewer_server, "--candidates", str(scripted), "--max-rounds", "3",
                          "--max-new-tokens", "12", "--output-dir", str(out)],
                         cwd=REPO, env=dict(ENV, API_KEY=KEY), capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["engine"]["kind"] == "openai-compatible endpoint" and report["engine"]["model"] == MODEL
    assert set(report["runs"]) == {"endpoint", "endpoint_steered"}
    for name in report["runs"]:
        rescored = subprocess.run([sys.executable, "-m", "eval.interview_policy", "--transcripts",
                                   str(out / f"transcripts_{name}.jsonl")], cwd=REPO, env=ENV, capture_output=True,
                                  text=True, check=True)
        assert json.loads(rescored.stdout)["n"] == 1
    steered = json.loads((out / "transcripts_endpoint_steered.jsonl").read_text(encoding="utf-8"))
    assert steered["id"].startswith("c1") and steered["ended_by"] in ("closing", "round_cap")
    assert MODEL in (out / "report.md").read_text(encoding="utf-8") and (out / "policy.png").stat().st_size > 0

    chat = subprocess.run([sys.executable, "-m", "scripts.chat", "--recipe", INTERVIEW_RECIPE, "--endpoint",
                           interviewer_server, "--api-key", KEY, "--greedy", "--max-new-tokens", "12",
                           "--topics", "TCP", "--transcript", str(tmp_path / "chat.json")],
                          cwd=REPO, env=ENV, input="不了解\n", capture_output=True, text=True, timeout=600)
    assert chat.returncode == 0, chat.stderr[-3000:]
    session = json.loads((tmp_path / "chat.json").read_text(encoding="utf-8"))
    assert session["ended_by"] == "closing" and session["score"] is not None
    assert session["model"]["base"].startswith(interviewer_server)


def test_endpoint_errors_are_one_line(tmp_path):
    port = free_port()  # nothing listens there
    run = subprocess.run([sys.executable, "-m", "eval.simulate", "--recipe", INTERVIEW_RECIPE, "--endpoint",
                          f"http://127.0.0.1:{port}/v1", "--per-skill", "1", "--output-dir", str(tmp_path)],
                         cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)
    assert run.returncode != 0 and "cannot connect" in run.stderr and "Traceback" not in run.stderr


FC_ROW_TOOLS = [{"name": "get_weather", "description": "Current weather of a city.",
                 "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City."}},
                                "required": ["city"]}}]
FC_QUERY = "What is the weather in Paris right now?"
FC_CALL = [{"name": "get_weather", "arguments": {"city": "Paris"}}]


def overfit_tool_caller(tmp_path: Path) -> Path:
    """A LoRA adapter that has learnt one tool call by heart (60 steps on one row, ~1 min): the served
    model then answers that query with that call, through LLaMA-Factory's template and tool format."""
    data = tmp_path / "data"
    data.mkdir()
    row = {"conversations": [{"from": "human", "value": FC_QUERY},
                             {"from": "function_call", "value": json.dumps(FC_CALL)}],
           "tools": json.dumps(FC_ROW_TOOLS)}
    (data / "one.json").write_text(json.dumps([row]), encoding="utf-8")
    info = json.loads((REPO / "dataset_info.json").read_text(encoding="utf-8"))["fc_train"]
    (data / "dataset_info.json").write_text(json.dumps({"fc_one": {**info, "file_name": "one.json"}}), encoding="utf-8")
    config = yaml.safe_load((REPO / FC_RECIPE).read_text(encoding="utf-8"))
    config.update(dataset_dir=str(data), dataset="fc_one", output_dir=str(tmp_path / "sft"), max_steps=60,
                  learning_rate=2e-3, lora_rank=8, lora_alpha=16, lora_dropout=0.0, per_device_train_batch_size=1,
                  gradient_accumulation_steps=1, warmup_ratio=0.0, lr_scheduler_type="constant", logging_steps=10,
                  save_steps=1000, use_cpu=True, bf16=False, fp16=False, report_to="none", plot_loss=False,
                  overwrite_output_dir=True)
    for key in ("eval_dataset", "eval_strategy", "eval_steps", "max_samples"):
        config.pop(key, None)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    result = subprocess.run([CLI, "train", str(recipe)], cwd=REPO, env=ENV, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp_path / "sft"


@pytest.mark.slow
def test_tool_calls_come_back_as_openai_tool_calls(smollm2, tmp_path):
    adapter = overfit_tool_caller(tmp_path)
    with server(FC_RECIPE, "--adapter", str(adapter), key=None, log=tmp_path / "log") as url:
        tools = [{"type": "function", "function": tool} for tool in FC_ROW_TOOLS]
        reply = client(url, key=None).chat.completions.create(
            model=Path(FC_RECIPE).stem, messages=[{"role": "user", "content": FC_QUERY}], tools=tools,
            temperature=0, max_tokens=64)
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls", choice.message
    calls = [{"name": c.function.name, "arguments": json.loads(c.function.arguments)}
             for c in choice.message.tool_calls]
    assert calls == FC_CALL
    # the client's calls, written back as text, are scored by the repo's one tool-call scorer
    scores = score(json.dumps(calls), json.dumps(FC_CALL), FC_ROW_TOOLS)
    assert scores["parse"] == scores["exact"] == scores["schema_hit"] == scores["exec"] == 1.0


def test_served_generation_drops_a_cut_character_and_keeps_whole_ones(smollm2):
    """guard_generation: a reply cut by its budget inside a multi-byte character ends before it, as
    in-process (decode_complete); a complete reply is untouched."""
    import torch
    from transformers import AutoTokenizer

    from scripts.serve import guard_generation

    tokenizer = AutoTokenizer.from_pretrained(smollm2)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    ids = tokenizer.encode("好的你好", add_special_tokens=False)

    class Model:
        reply: list[int] = []

        def generate(self, **kwargs):
            return torch.tensor([[7, 7] + self.reply])

    for reply, text in ((ids[:-1], "好的你"), (ids, "好的你好")):
        model = Model()
        model.reply = reply
        guard_generation(model, tokenizer, 0)
        out = model.generate(inputs=torch.tensor([[7, 7]]))
        assert tokenizer.decode(out[0, 2:], skip_special_tokens=True) == text
