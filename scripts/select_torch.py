"""Which torch build `make setup` installs: TORCH=auto|cpu|cu130|cu<NNN>. Standard library only (it runs
before any venv exists). Prints the build on stdout and the reason on stderr.

  cpu     torch 2.13.0+cpu from a local wheel folder or PyTorch's CPU index (requirements/torch-cpu.txt)
  cu130   PyPI's torch 2.13.0 with its CUDA 13.0 libraries, locked (requirements/torch-cu130.txt);
          NVIDIA driver >= 580
  cu128   torch 2.13.0+cu128 from PyTorch's index (https://download.pytorch.org/whl/cu128), its CUDA
          libraries resolved from that index; NVIDIA driver >= 570 (>= 525 through CUDA's
          minor-version compatibility). Also cu126 and any other cuNNN PyTorch publishes.
  auto    an NVIDIA driver (from nvidia-smi) >= 580: cu130; 525 to 579: cu128; no GPU: cpu.

    python3 scripts/select_torch.py auto
"""
from __future__ import annotations

import re
import subprocess
import sys

CUDA13_MIN_DRIVER = 580     # CUDA 13.x toolkit release notes: R580 and newer
CUDA12_MIN_DRIVER = 525     # CUDA 12.x minor-version compatibility floor


def driver_version(nvidia_smi: str = "nvidia-smi") -> str | None:
    """The NVIDIA driver version of the first GPU ("580.82.07"), or None when there is no usable nvidia-smi."""
    try:
        out = subprocess.run([nvidia_smi, "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = out.stdout.strip().splitlines()
    version = lines[0].strip() if out.returncode == 0 and lines else ""
    return version if re.fullmatch(r"\d+(\.\d+)*", version) else None


def select(requested: str, driver: str | None) -> tuple[str, str]:
    """(build, reason) for TORCH=requested on a machine with this driver."""
    requested = requested.strip().lower()
    if requested == "cpu" or re.fullmatch(r"cu\d{3}", requested):
        return requested, f"TORCH={requested} asked for"
    if requested != "auto":
        raise ValueError(f"TORCH={requested!r}: use auto, cpu, cu130 or cuNNN (e.g. cu128)")
    if driver is None:
        return "cpu", "no NVIDIA GPU found (nvidia-smi absent or failing): CPU build"
    shown, major = driver, int(driver.split(".")[0])
    if major >= CUDA13_MIN_DRIVER:
        return "cu130", f"NVIDIA driver {shown} >= {CUDA13_MIN_DRIVER}: PyPI's CUDA 13.0 build"
    if major >= CUDA12_MIN_DRIVER:
        return "cu128", f"NVIDIA driver {shown} < {CUDA13_MIN_DRIVER}: CUDA 12.8 build from PyTorch's index"
    return "cpu", (f"NVIDIA driver {shown} is older than {CUDA12_MIN_DRIVER}, which every CUDA build of "
                   "torch 2.13 needs: CPU build (update the driver to train on the GPU)")


def main(argv: list[str]) -> int:
    requested = argv[1] if len(argv) > 1 else "auto"
    try:
        build, reason = select(requested, driver_version() if requested.strip().lower() == "auto" else None)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"setup: torch build {build} ({reason})", file=sys.stderr)
    print(build)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
