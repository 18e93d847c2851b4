#!/usr/bin/env bash
# Build .venv-agents: the agent frameworks that tests/test_agents.py drives against `serve`, at
# the versions tested (instructor last and without its dependencies: its pin of jiter<0.15
# against openai's jiter>=0.16 makes pip backtrack for minutes: its other dependencies are named;
# Qwen-Agent imports numpy, soundfile and dateutil without declaring them).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv-agents"
python3 -m venv "$venv"
pip() { "$venv/bin/pip" install --quiet --disable-pip-version-check "$@" 2>&1 | grep -v "^WARNING: Location" || true; }
pip "openai==3.63.0" "openai-agents==0.24.0" "pydantic-ai-slim[openai]==2.78.0" \
  "langchain-openai==1.8.1" "smolagents==1.26.0" "qwen-agent==0.0.34" numpy soundfile python-dateutil \
  "docstring-parser>=0.16,<1" "tenacity>=8.2.3,<10" "typer>=0.9,<1" "rich>=13.7,<15" "jinja2>=3.1.4,<4"
pip --no-deps "instructor==1.17.0"
"$venv/bin/python" -c "import agents, pydantic_ai, langchain_openai, smolagents, qwen_agent, instructor" \
  || { echo "building $venv failed" >&2; exit 1; }
echo "export QWEN_GRADIO_AGENTS_PYTHON=$venv/bin/python"
