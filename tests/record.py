"""Record the cassettes: ``python tests/record.py [--generation gradio4|gradio5|gradio6|all]``.

Starts the replica under each gradio generation (the current one from this environment, 5.13.1
from ``QWEN_GRADIO_G5_PYTHON`` or ``.venv-gradio5``, 4.44.1 from ``QWEN_GRADIO_G4_PYTHON`` or
``.venv-gradio4``) and runs ``tests/test_cassettes.py`` in
record mode against it, rewriting ``cassettes/<generation>/``.

``--live`` records from the real Space instead (needs internet), into ``cassettes/live/``; only
the tests that do not rely on the replica's scripted replies run. ``--space`` names another Space
(an id or URL). ``--cassettes DIR`` writes somewhere else.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import OLD_GENERATIONS, generation_python, start_replica  # noqa: E402

GENERATIONS = ["gradio4", "gradio5", "gradio6"]


def record(generation: str, url: str, cassettes: Path) -> int:
    target = cassettes / generation
    if target.exists():
        shutil.rmtree(target)
    env = {
        **os.environ,
        "QWEN_GRADIO_RECORD_URL": url,
        "QWEN_GRADIO_RECORD_GENERATION": generation,
        "QWEN_GRADIO_CASSETTES": str(cassettes),
    }
    command = [
        sys.executable,
        "-m",
        "pytest",
        "tests/test_cassettes.py",
        "--record-mode=all",
        "-q",
        "-p",
        "no:cacheprovider",
        "-k",
        f"{generation} or no_cassette",
    ]
    print(f"recording {generation} from {url} into {target}", flush=True)
    return subprocess.call(command, cwd=ROOT, env=env)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generation", choices=[*GENERATIONS, "all"], default="all")
    parser.add_argument("--live", action="store_true", help="record from the real Space")
    parser.add_argument("--space", default=None, help="with --live: the Space (id or URL)")
    parser.add_argument("--cassettes", type=Path, default=ROOT / "cassettes")
    args = parser.parse_args(argv)
    if args.live:
        from qwen_gradio import resolve_space_url

        return record("live", resolve_space_url(args.space), args.cassettes)
    generations = GENERATIONS if args.generation == "all" else [args.generation]
    status = 0
    for generation in generations:
        python = generation_python(generation)
        if python is None:
            script = OLD_GENERATIONS[generation][3]
            print(f"{generation}: no interpreter; run tests/{script}", file=sys.stderr)
            return 2
        replica = start_replica(python, f"record-{generation}")
        try:
            status |= record(generation, replica.url, args.cassettes)
        finally:
            replica.process.terminate()
            replica.process.wait(timeout=10)
    return status


if __name__ == "__main__":
    sys.exit(main())
