import os
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# the suite's evals cache their completions apart from the user's runs/.eval_cache (eval/generate.py)
os.environ.setdefault("EVAL_CACHE_DIR", tempfile.mkdtemp(prefix="eval_cache_"))

SMOLLM2 = REPO / "models" / "SmolLM2-135M-Instruct"


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: trains or generates with a model (seconds to minutes)")


@pytest.fixture(scope="session")
def tiny_qwen3(tmp_path_factory) -> Path:
    from tests.tiny_model import build_tiny_qwen3

    return build_tiny_qwen3(tmp_path_factory.mktemp("tiny_qwen3"))


@pytest.fixture(scope="session")
def smollm2() -> Path:
    if not (SMOLLM2 / ".complete").is_file():
        pytest.fail(f"{SMOLLM2} is missing: run `make model` (make test does it)")
    return SMOLLM2
