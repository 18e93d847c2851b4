#!/usr/bin/env bash
# Build .venv-gradio5: the Space's own gradio generation (5.13.1), used to serve the replica in
# the gradio-5 test cases. Prints the variable that points the tests at it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv-gradio5"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check \
  "gradio==5.13.1" "pydantic==2.10.6" "fastapi==0.115.6" "starlette==0.41.3" \
  "huggingface_hub<0.30" requests
"$venv/bin/python" -c "import gradio; assert gradio.__version__ == '5.13.1', gradio.__version__"
echo "export QWEN_GRADIO_G5_PYTHON=$venv/bin/python"
