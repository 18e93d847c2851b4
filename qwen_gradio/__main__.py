"""``python -m qwen_gradio``: the same as the ``qwen-gradio`` command."""

from .cli import main

main(prog_name="qwen-gradio")
