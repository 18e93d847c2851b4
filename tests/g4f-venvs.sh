#!/usr/bin/env bash
# Build .venv-g4f-0.5.7 (the seed's gpt4free generation) and .venv-g4f-8.8 (current gpt4free),
# in parallel: each with gpt4free and its API server (the "api" extra) and qwen_gradio's own
# dependencies (qwen_gradio itself comes from the checkout, through PYTHONPATH, as for the
# gradio-5 replica).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mapfile -t core < <(python3 -c 'import tomllib, sys
print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]))' "$root/pyproject.toml")
build() {  # build NAME G4F_REQUIREMENT
  local venv="$root/.venv-$1"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "$2" "${core[@]}" 2>&1 | grep -v "^WARNING: Location" || true
  "$venv/bin/python" -c "import g4f.client, fastapi, uvicorn, gradio_client" \
    || { echo "building $venv failed" >&2; return 1; }
}
build g4f-0.5.7 "g4f[api]==0.5.7.0" & first=$!
build g4f-8.8 "g4f[api]==8.8.6" & second=$!
wait "$first"
wait "$second"
echo "export QWEN_GRADIO_G4F_057_PYTHON=$root/.venv-g4f-0.5.7/bin/python"
echo "export QWEN_GRADIO_G4F_88_PYTHON=$root/.venv-g4f-8.8/bin/python"
