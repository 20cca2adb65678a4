"""The lock: what each environment installs, and a check that it is complete.

Each target is one environment, installed with `pip install --no-deps` from exact pins, so nothing is
resolved at install time:

  cpu     requirements/common.txt + requirements/torch-cpu.txt     make setup TORCH=cpu
  cu130   requirements/common.txt + requirements/torch-cu130.txt   make setup TORCH=cu130 (PyPI's torch)
  vllm    requirements/vllm.txt                                     make setup-vllm (GRPO with vLLM)

"Complete" means: for Linux x86_64 and every supported Python, every `Requires-Dist` of every pinned
package (its markers evaluated for that Python, extras followed where a dependent asks for them) is met
by a pin of the same target, or is listed in requirements/omitted.txt with the reason it is left out
(llamafactory's web UI, for example). An omission that no target needs any more is reported too.

  python -m scripts.lock check      offline, from requirements/metadata.json (a test runs it)
  python -m scripts.lock pythons    the Python versions every target has wheels for
  python -m scripts.lock refresh    online: read the metadata of new pins (--all: every pin) from PyPI.
                                    METADATA is read out of the Linux x86_64 wheel itself with HTTP range
                                    requests (PyPI serves no separate metadata files here), so a 900 MB
                                    wheel costs a few kB. Local wheel folders (--wheel-dir) are read first.
"""
from __future__ import annotations

import argparse
import email.parser
import html.parser
import io
import json
import re
import sys
import tarfile
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = REPO_ROOT / "requirements"
METADATA_FILE = REQUIREMENTS / "metadata.json"
OMITTED_FILE = REQUIREMENTS / "omitted.txt"
TARGETS = {
    "cpu": ["common.txt", "torch-cpu.txt"],
    "cu130": ["common.txt", "torch-cu130.txt"],
    "vllm": ["vllm.txt"],
}
# Pythons the check evaluates markers for; `pythons` says which of them each target has wheels for.
CANDIDATE_PYTHONS = ["3.10", "3.11", "3.12", "3.13", "3.14"]
INDEX_URL = "https://pypi.org/simple"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Pin:
    name: str          # canonical
    version: str
    source: str        # file:line, for messages


def read_pins(files: list[str]) -> dict[str, Pin]:
    """name -> Pin from `name==version` lines; anything else (ranges, URLs, duplicates) is an error."""
    pins: dict[str, Pin] = {}
    errors = []
    for file in files:
        path = REQUIREMENTS / file
        for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            where = f"requirements/{file}:{number}"
            match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)", line)
            if not match:
                errors.append(f"{where}: not an exact pin: {line!r}")
                continue
            name = canonical(match.group(1))
            if name in pins:
                errors.append(f"{where}: {name} is pinned twice (also {pins[name].source})")
                continue
            pins[name] = Pin(name, match.group(2), where)
    if errors:
        raise SystemExit("error: " + "\n       ".join(errors))
    return pins


def read_omitted() -> dict[tuple[str, str], str]:
    """(package, requirement name) -> why it is left out."""
    omitted = {}
    for number, raw in enumerate(OMITTED_FILE.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 2)
        if len(parts) < 3:
            raise SystemExit(f"error: requirements/omitted.txt:{number}: want 'package requirement reason'")
        omitted[(canonical(parts[0]), canonical(parts[1]))] = parts[2]
    return omitted


def marker_env(python: str) -> dict[str, str]:
    return {
        "python_version": python, "python_full_version": python + ".0", "os_name": "posix",
        "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
        "platform_python_implementation": "CPython", "implementation_name": "cpython",
        "platform_release": "", "platform_version": "", "implementation_version": python + ".0",
    }


def check_target(target: str, metadata: dict, omitted: dict, python: str) -> tuple[list[str], set]:
    """Problems of one target for one Python, and the omissions it relied on."""
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    pins = read_pins(TARGETS[target])
    problems, used = [], set()
    # Extras asked for by a dependent: their requirements count too (followed to a fixed point).
    extras: dict[str, set[str]] = {name: set() for name in pins}
    pending = list(pins)
    while pending:
        name = pending.pop()
        pin = pins[name]
        meta = metadata.get(f"{name}=={pin.version}")
        if meta is None:
            problems.append(f"{target}: no metadata for {name}=={pin.version} (run: python -m scripts.lock refresh)")
            continue
        requires_python = meta.get("requires_python")
        if requires_python and Version(python) not in SpecifierSet(requires_python):
            problems.append(f"{target} py{python}: {name}=={pin.version} requires Python {requires_python}")
        for text in meta["requires_dist"]:
            requirement = Requirement(text)
            active = extras[name] | {""}
            if requirement.marker and not any(
                    requirement.marker.evaluate(dict(marker_env(python), extra=extra)) for extra in active):
                continue
            dep = canonical(requirement.name)
            if dep not in pins:
                if (name, dep) in omitted:
                    used.add((name, dep))
                else:
                    problems.append(f"{target} py{python}: {name}=={pin.version} requires {text!r}: not in the lock")
                continue
            if not requirement.specifier.contains(Version(pins[dep].version), prereleases=True):
                problems.append(f"{target} py{python}: {name}=={pin.version} requires {text!r}, "
                                f"the lock has {dep}=={pins[dep].version} ({pins[dep].source})")
            new = set(requirement.extras) - extras[dep]
            if new:
                extras[dep] |= new
                pending.append(dep)
    return problems, used


def wheel_fits(tag: str, python: str) -> bool:
    """Does a wheel tag `python-abi-platform` install on CPython `python` (glibc Linux, x86_64)?"""
    interpreters, abi, platform = tag.split("-")
    platforms = platform.split(".")
    if not any(p == "any" or (p.endswith("_x86_64") and (p.startswith("manylinux") or p == "linux_x86_64"))
               for p in platforms):
        return False
    version = int(python.replace(".", ""))
    for interpreter in interpreters.split("."):
        if interpreter in ("py3", f"py{version}") and abi == "none":
            return True
        if interpreter.startswith("cp"):
            built_for = int(interpreter[2:])
            if abi == "abi3" and built_for <= version:
                return True
            if built_for == version and abi in (interpreter, "none"):
                return True
    return False


def supported_pythons(target: str, metadata: dict) -> list[str]:
    """Pythons for which every pin of the target has an installable file (a fitting wheel or an sdist)."""
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    pins = read_pins(TARGETS[target])
    result = []
    for python in CANDIDATE_PYTHONS:
        ok = True
        for name, pin in pins.items():
            meta = metadata.get(f"{name}=={pin.version}", {})
            requires_python = meta.get("requires_python")
            if requires_python and Version(python) not in SpecifierSet(requires_python):
                ok = False
                break
            if not (meta.get("sdist") or any(wheel_fits(tag, python) for tag in meta.get("wheels", []))):
                ok = False
                break
        if ok:
            result.append(python)
    return result


def check(metadata: dict) -> list[str]:
    omitted = read_omitted()
    problems, used = [], set()
    for target in TARGETS:
        pythons = supported_pythons(target, metadata)
        if not pythons:
            problems.append(f"{target}: no Python version has wheels for every pin")
        for python in pythons:
            found, relied = check_target(target, metadata, omitted, python)
            problems += found
            used |= relied
    for package, requirement in sorted(set(omitted) - used):
        problems.append(f"requirements/omitted.txt: {package} -> {requirement} is met or not required by "
                        "any target: remove the line")
    return problems


# ---------------------------------------------------------------- refresh (online)

class _Links(html.parser.HTMLParser):
    """The file URLs of a simple-index page (fragments such as #sha256=… cut off)."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.urls.append((dict(attrs).get("href") or "").split("#", 1)[0])


class _RangeFile(io.RawIOBase):
    """A read-only, seekable view of a remote file through HTTP range requests (enough for zipfile)."""

    def __init__(self, url: str):
        self.url, self.position = url, 0
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=60) as response:
            self.size = int(response.headers["Content-Length"])

    def seekable(self):
        return True

    def readable(self):
        return True

    def tell(self):
        return self.position

    def seek(self, offset, whence=io.SEEK_SET):
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = base + offset
        return self.position

    def read(self, size=-1):
        end = self.size if size is None or size < 0 else min(self.size, self.position + size)
        if end <= self.position:
            return b""
        request = urllib.request.Request(self.url, headers={"Range": f"bytes={self.position}-{end - 1}"})
        with urllib.request.urlopen(request, timeout=60) as response:
            data = response.read()
        self.position += len(data)
        return data


def _wheel_tag(filename: str) -> str:
    return "-".join(filename[:-4].split("-")[-3:])


def _is_wheel_of(filename: str, stem: str, version: str) -> bool:
    """Is filename a wheel of the distribution `stem` (canonical, with underscores) at version?"""
    parts = filename.split("-")
    return filename.endswith(".whl") and canonical(parts[0]).replace("-", "_") == stem and parts[1] == version


def _metadata_from_wheel(opened) -> email.message.Message:
    with zipfile.ZipFile(opened) as archive:
        name = next(n for n in archive.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n))
        return email.parser.Parser().parsestr(archive.read(name).decode("utf-8"))


def _summarise(message, wheels: list[str], sdist: bool) -> dict:
    return {"requires_python": message.get("Requires-Python"),
            "requires_dist": sorted(message.get_all("Requires-Dist") or []),
            "wheels": sorted(set(wheels)), "sdist": sdist}


def fetch_metadata(name: str, version: str, wheel_dirs: list[Path]) -> dict:
    """Metadata of name==version: from a local wheel when one is there, else from PyPI."""
    stem = canonical(name).replace("-", "_")
    for folder in wheel_dirs:
        for wheel in sorted(folder.glob("*.whl")):
            if _is_wheel_of(wheel.name, stem, version):
                return _summarise(_metadata_from_wheel(wheel), [_wheel_tag(wheel.name)], False)
    with urllib.request.urlopen(f"{INDEX_URL}/{canonical(name)}/", timeout=60) as response:
        parser = _Links()
        parser.feed(response.read().decode("utf-8"))
    sdist_name = re.compile(rf"(?i){re.escape(stem).replace('_', '[-_.]')}-{re.escape(version)}\.(tar\.gz|zip)")
    wheels, sdists = [], []   # (filename, url)
    for url in parser.urls:
        filename = urllib.parse.unquote(url.rsplit("/", 1)[-1])
        if _is_wheel_of(filename, stem, version) and any(wheel_fits(_wheel_tag(filename), p) for p in CANDIDATE_PYTHONS):
            wheels.append((filename, url))
        elif sdist_name.fullmatch(filename):
            sdists.append((filename, url))
    # Read the metadata of a Python 3.11 wheel when there is one (what the development machines install).
    wheels.sort(key=lambda wheel: not wheel_fits(_wheel_tag(wheel[0]), "3.11"))
    if wheels:
        message = _metadata_from_wheel(_RangeFile(wheels[0][1]))
    elif sdists:
        message = _metadata_from_sdist(sdists[0][1])
    else:
        raise SystemExit(f"error: PyPI has no Linux x86_64 wheel or sdist of {name}=={version}")
    return _summarise(message, [_wheel_tag(filename) for filename, _ in wheels], bool(sdists))


def _sdist_file(data: bytes, url: str, suffix: str) -> str | None:
    """The text of the shallowest member of an sdist archive whose name ends with suffix."""
    if url.endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = [n for n in archive.namelist() if n.endswith(suffix)]
            return archive.read(min(names, key=len)).decode("utf-8") if names else None
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        members = [m for m in archive.getmembers() if m.name.endswith(suffix)]
        return archive.extractfile(min(members, key=lambda m: len(m.name))).read().decode("utf-8") if members else None


def _metadata_from_sdist(url: str) -> email.message.Message:
    """PKG-INFO of an sdist (small packages only: the whole archive is read)."""
    with urllib.request.urlopen(url, timeout=120) as response:
        data = response.read()
    message = email.parser.Parser().parsestr(_sdist_file(data, url, "PKG-INFO"))
    if message.get_all("Requires-Dist") is None:
        # Old sdists (metadata 1.x) list no requirements in PKG-INFO; requires.txt of the egg-info does.
        requires = _sdist_file(data, url, ".egg-info/requires.txt")
        if requires:
            _add_egg_info_requires(message, requires)
    return message


def _add_egg_info_requires(message, text: str) -> None:
    """Requires-Dist lines from an egg-info requires.txt ([extra:marker] sections become markers)."""
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        extra, _, marker = section.partition(":")
        conditions = [f"({marker})"] if marker else []
        if extra:
            conditions.append(f'extra == "{extra}"')
        message["Requires-Dist"] = line + ("; " + " and ".join(conditions) if conditions else "")


def refresh(wheel_dirs: list[Path], everything: bool) -> dict:
    try:
        from tqdm import tqdm
    except ImportError:  # refresh may run before any venv exists
        def tqdm(items, **_):
            return items
    old = json.loads(METADATA_FILE.read_text(encoding="utf-8")) if METADATA_FILE.exists() else {}
    wanted = sorted({f"{pin.name}=={pin.version}" for files in TARGETS.values() for pin in read_pins(files).values()})
    metadata = {}
    for key in tqdm(wanted, desc="metadata", unit="pin"):
        if key in old and not everything:
            metadata[key] = old[key]
            continue
        name, version = key.split("==")
        try:
            metadata[key] = fetch_metadata(name, version, wheel_dirs)
        except (OSError, StopIteration, zipfile.BadZipFile) as error:
            if key not in old:
                raise SystemExit(f"error: {key}: {error}") from None
            print(f"warning: {key}: {error}; keeping the stored metadata", file=sys.stderr)
            metadata[key] = old[key]
    return metadata


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["check", "pythons", "refresh"])
    parser.add_argument("--wheel-dir", action="append", type=Path, default=[],
                        help="refresh: local wheel folder read before PyPI (e.g. a CPU torch build)")
    parser.add_argument("--all", action="store_true", help="refresh: re-read pins already stored too")
    args = parser.parse_args(argv)
    if args.command == "refresh":
        from scripts.common import atomic_write_text
        metadata = refresh(args.wheel_dir, args.all)
        atomic_write_text(METADATA_FILE, json.dumps(metadata, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
        print(f"refresh: {len(metadata)} pins -> {METADATA_FILE.relative_to(REPO_ROOT)}")
    metadata = json.loads(METADATA_FILE.read_text(encoding="utf-8"))
    if args.command == "pythons":
        for target in TARGETS:
            print(f"{target}: {' '.join(supported_pythons(target, metadata))}")
        return 0
    problems = check(metadata)
    for problem in problems:
        print(problem)
    pythons = {target: supported_pythons(target, metadata) for target in TARGETS}
    print(f"lock check: {len(problems)} problem(s); " + "; ".join(f"{t} on Python {' '.join(p)}" for t, p in pythons.items()))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
