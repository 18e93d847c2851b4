#!/usr/bin/env bash
# Build .venv-seed: gpt4free 0.5.7.0, whose Qwen_Qwen_2_5_Max is the seed's original provider,
# so that bench/run.py can measure it side by side (its row is skipped without this venv).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python3 -m venv "$root/.venv-seed"
"$root/.venv-seed/bin/pip" install --quiet --disable-pip-version-check "g4f==0.5.7.0" httpx
"$root/.venv-seed/bin/python" -c "from g4f.Provider.hf_space.Qwen_Qwen_2_5_Max import Qwen_Qwen_2_5_Max"
echo "built $root/.venv-seed"
