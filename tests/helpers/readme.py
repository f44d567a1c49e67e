"""The README's examples as tests run them: its blocks, console steps run with bash, and the data they use."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

README = (Path(__file__).parents[2] / "README.md").read_text()


EXAMPLE_IDS = {
    "dsa1b2c3d4e5f6g": r"ds[a-z0-9]{13}",
    "spa1b2c3d4e5f6g": r"sp[a-z0-9]{13}",
    "k2x9q1z": r"[a-z0-9]{7}",
    "p0q9r8s": r"[a-z0-9]{7}",
}


def block(heading: str, language: str) -> str:
    """The first ```language block under `heading`."""
    section = README[README.index(heading) :]
    return section.split(f"```{language}\n", 1)[1].split("```", 1)[0]


def console(heading: str) -> list[tuple[str, list[str]]]:
    """(command, the output lines the README shows for it) for each `$ ` line of the console block."""
    steps: list[tuple[str, list[str]]] = []
    for line in block(heading, "console").splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    return steps


def shown_as(line: str) -> re.Pattern:
    """An output line of the README as a pattern: example ids and the time stand for any."""
    pattern = re.escape(line)
    for example, any_id in EXAMPLE_IDS.items():
        pattern = pattern.replace(example, any_id)
    return re.compile(pattern.replace(r"in\ 0\.1\ s", r"in\ \d+\.\d\ s"))


def the_data(folder: Path) -> Path:
    """The README's ./data: two files, 2.9 KiB."""
    (folder / "data" / "images").mkdir(parents=True)
    (folder / "data" / "labels.csv").write_bytes(b"id,label\n1,cat\n")
    (folder / "data" / "images" / "1.png").write_bytes(b"\x89PNG" + bytes(2950))
    return folder / "data"


def run_steps(steps, cwd: Path, swap: dict[str, str]) -> dict[str, str]:
    """Run each command with bash in `cwd`; check the lines the README shows. Returns example id -> real id."""
    for command, expected in steps:
        for example, real in swap.items():
            command = command.replace(example, real)
        r = subprocess.run(
            ["bash", "-c", command], cwd=cwd, capture_output=True, text=True, env=os.environ.copy(), timeout=120
        )
        assert r.returncode == 0, (command, r.stdout, r.stderr)
        for line in expected:
            found = shown_as(line).search(r.stdout)
            assert found, (command, line, r.stdout)
            for example in EXAMPLE_IDS:  # a version the README names later is the one made here
                if example in line and example in ("p0q9r8s",):
                    swap[example] = found.group(0)[-7:]
    return swap
