"""prepare_xlam on a 60k-row file vs the floor of any converter: json.load + json.dump of the same file.

    python -m bench.bench_prepare_xlam [--rows 60000]

The 60k rows come from the offline generator (same schema and similar row sizes as the real
xlam-function-calling-60k). Both are timed in one run, on the same file, so the ratio is what
matters on a noisy machine. Writes bench/results/prepare_xlam.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from scripts import prepare_xlam
from scripts.common import write_json
from scripts.gen_xlam_sample import generate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--output", type=Path, default=Path("bench/results/prepare_xlam.json"))
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "xlam.json"
        src.write_text(json.dumps(generate(args.rows, seed=0), ensure_ascii=False), encoding="utf-8")

        start = time.perf_counter()
        data = json.loads(src.read_text(encoding="utf-8"))
        (Path(tmp) / "copy.json").write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
        baseline = time.perf_counter() - start

        start = time.perf_counter()
        prepare_xlam.main(["--input", str(src), "--output-dir", str(Path(tmp) / "out"),
                           "--dataset-info", str(Path(tmp) / "dataset_info.json")])
        convert = time.perf_counter() - start
        size_mb = src.stat().st_size / 1e6

    result = {"rows": args.rows, "input_mb": round(size_mb, 1), "json_load_dump_s": round(baseline, 2),
              "prepare_xlam_s": round(convert, 2), "ratio": round(convert / baseline, 2),
              "rows_per_s": round(args.rows / convert)}
    write_json(args.output, result)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
