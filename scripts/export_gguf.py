"""Merged model -> GGUF (+ Q4_K_M) + Ollama Modelfile, then check the GGUF files answer like the merged model.

    python -m scripts.export_gguf configs/interview_smollm2_lora_sft_cpu.yaml   # after `make merge`

1. llama.cpp's own converter (`convert_hf_to_gguf.py`, taken from the llama-cpp-python sdist by
   `make llama-cpp`) writes <run>/gguf/model-f16.gguf (bf16 when the base model is bf16).
2. llama.cpp's quantizer, through llama-cpp-python's binding of `llama_model_quantize`, writes
   model-Q4_K_M.gguf. Tensors whose rows are not a multiple of 256 cannot be Q4_K: llama.cpp picks a
   fallback type for those and says so (SmolLM2-135M's hidden size 576 is such a case).
3. Modelfile: seed 000's ChatML template (written over .Messages so multi-turn history works), the
   interviewer system prompt and seed 000's parameters.
4. The check (gguf_report.json): each GGUF file is loaded with llama-cpp-python, tokenizes the prompt
   exactly as the merged model's tokenizer does, and its greedy continuation is compared token by token
   with transformers' greedy continuation from the merged folder; it also answers through the chat
   template embedded in the GGUF file.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from scripts.common import REPO_ROOT, atomic_write_text, dump_json, relative_to_repo, write_json
from scripts.merge import CHECK_PROMPT, base_dtype, check_prompt_ids
from scripts.prompts import INTERVIEWER_SYSTEM_PROMPT
from scripts.recipes import read_recipe

CONVERTER = REPO_ROOT / "tools" / "llama.cpp" / "convert_hf_to_gguf.py"
QUANT_TYPE = "Q4_K_M"
CHECK_TOKENS = 32
# Seed 000's Ollama parameters.
OLLAMA_PARAMETERS = [("stop", '"<|im_start|>"'), ("stop", '"<|im_end|>"'), ("temperature", "0.7"), ("top_p", "0.9")]
# ChatML over the whole history (seed 000's template renders one prompt only).
OLLAMA_TEMPLATE = """{{- if .System }}<|im_start|>system
{{ .System }}<|im_end|>
{{ end }}
{{- range .Messages }}<|im_start|>{{ .Role }}
{{ .Content }}<|im_end|>
{{ end }}<|im_start|>assistant
"""


def modelfile(gguf_name: str) -> str:
    lines = [f"FROM ./{gguf_name}", f'TEMPLATE """{OLLAMA_TEMPLATE}"""', f'SYSTEM """{INTERVIEWER_SYSTEM_PROMPT}"""']
    lines += [f"PARAMETER {key} {value}" for key, value in OLLAMA_PARAMETERS]
    return "\n".join(lines) + "\n"


def convert(merged: Path, outfile: Path, outtype: str) -> None:
    if not CONVERTER.is_file():
        sys.exit(f"error: {relative_to_repo(CONVERTER)} is missing: run `make llama-cpp` (it unpacks llama.cpp's "
                 "converter from the llama-cpp-python sdist and builds llama-cpp-python)")
    partial = outfile.with_name(outfile.name + ".partial")
    command = [sys.executable, str(CONVERTER), str(merged), "--outtype", outtype, "--outfile", str(partial)]
    print("+ " + " ".join(command), flush=True)
    # gguf-py next to the converter is the version it was written for (NO_LOCAL_GGUF unset)
    env = {k: v for k, v in os.environ.items() if k != "NO_LOCAL_GGUF"}
    subprocess.run(command, check=True, env=env)
    partial.replace(outfile)


def quantize(source: Path, outfile: Path, quant_type: str) -> None:
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{quant_type}")
    params.nthread = os.cpu_count() or 1
    partial = outfile.with_name(outfile.name + ".partial")
    status = llama_cpp.llama_model_quantize(str(source).encode(), str(partial).encode(), params)
    if status != 0:
        partial.unlink(missing_ok=True)
        sys.exit(f"error: llama_model_quantize({quant_type}) returned {status}")
    partial.replace(outfile)


@torch.no_grad()
def reference_continuation(merged: Path, prompt_ids: list[int], n_tokens: int) -> list[int]:
    """transformers' greedy tokens after the prompt, from the merged folder."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32).eval()
    out = model.generate(torch.tensor([prompt_ids]), max_new_tokens=n_tokens, do_sample=False,
                         eos_token_id=None, pad_token_id=0, min_new_tokens=n_tokens)
    return out[0, len(prompt_ids):].tolist()


def check_gguf(path: Path, prompt_text: str, prompt_ids: list[int], reference: list[int]) -> dict:
    """Load a GGUF with llama.cpp and compare its tokenizer, greedy tokens and chat answer to the merged model."""
    import llama_cpp

    start = time.perf_counter()
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=1024, n_threads=os.cpu_count() or 1, seed=0, verbose=False)
    tokens = llm.tokenize(prompt_text.encode(), add_bos=False, special=True)
    greedy = []
    for token in llm.generate(prompt_ids, top_k=1, temp=0.0, repeat_penalty=1.0, reset=True):
        greedy.append(int(token))
        if len(greedy) == len(reference):
            break
    agree = next((i for i, (a, b) in enumerate(zip(greedy, reference)) if a != b), len(reference))
    answer = llm.create_chat_completion(
        messages=[{"role": "system", "content": INTERVIEWER_SYSTEM_PROMPT}, {"role": "user", "content": CHECK_PROMPT}],
        temperature=0.0, max_tokens=48, seed=0)["choices"][0]["message"]["content"]
    return {
        "file": path.name,
        "size_mb": round(path.stat().st_size / 2**20, 1),
        "tokenizer_matches_transformers": tokens == prompt_ids,
        "greedy_tokens_equal_to_transformers": agree,
        "greedy_tokens_compared": len(reference),
        "chat_answer": answer,
        "seconds": round(time.perf_counter() - start, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", type=Path, help="the training recipe whose merged model is exported")
    parser.add_argument("--merged", type=Path, help="merged folder (default: <run>/merged, from `make merge`)")
    parser.add_argument("--output", type=Path, help="output folder (default: <run>/gguf)")
    parser.add_argument("--quant", default=QUANT_TYPE, help="llama.cpp quantization type, or 'none' (default Q4_K_M)")
    args = parser.parse_args(argv)

    recipe = read_recipe(args.recipe)
    run_dir = Path(recipe["output_dir"]).parent
    merged = args.merged or run_dir / "merged"
    if not (merged / "config.json").is_file():
        sys.exit(f"error: no merged model in {merged} (run first: make merge RECIPE={args.recipe})")
    output = args.output or run_dir / "gguf"
    output.mkdir(parents=True, exist_ok=True)

    outtype = "bf16" if base_dtype(str(merged)) == "bfloat16" else "f16"
    full = output / f"model-{outtype}.gguf"
    convert(merged, full, outtype)
    files = [full]
    if args.quant.lower() != "none":
        quantized = output / f"model-{args.quant}.gguf"
        quantize(full, quantized, args.quant)
        files.append(quantized)
    atomic_write_text(output / "Modelfile", modelfile(files[-1].name))

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(merged)
    prompt_ids = check_prompt_ids(tokenizer, recipe["template"])
    prompt_text = tokenizer.decode(prompt_ids)
    reference = reference_continuation(merged, prompt_ids, CHECK_TOKENS)
    report = {"merged": relative_to_repo(merged), "prompt_tokens": len(prompt_ids),
              "transformers_greedy": tokenizer.decode(reference),
              "files": [check_gguf(path, prompt_text, prompt_ids, reference) for path in files]}
    write_json(output / "gguf_report.json", report)
    print(dump_json(report))
    print(f"GGUF files and Modelfile: {relative_to_repo(output)}  (ollama create interviewer -f {output}/Modelfile)")
    broken = [f["file"] for f in report["files"] if not f["tokenizer_matches_transformers"]]
    if broken:
        print(f"error: llama.cpp tokenizes the prompt differently from transformers in {broken}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
