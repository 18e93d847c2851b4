#!/usr/bin/env bash
# Build .venv-gradio4: gradio 4.44.1 (the last 4.x), used to serve the replica in the gradio-4
# test cases. Prints the variable that points the tests at it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv-gradio4"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check \
  "gradio==4.44.1" "gradio_client==1.3.0" "fastapi==0.112.4" "pydantic==2.9.2" \
  "starlette==0.38.6" "huggingface_hub==0.25.2" requests
"$venv/bin/python" -c "import gradio; assert gradio.__version__ == '4.44.1', gradio.__version__"
echo "export QWEN_GRADIO_G4_PYTHON=$venv/bin/python"
