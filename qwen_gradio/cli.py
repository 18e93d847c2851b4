"""The ``qwen-gradio`` command line (click)."""

from __future__ import annotations

import click

from ._version import __version__
from .space import DEFAULT_SPACE, SPACE_ENV


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="qwen-gradio")
def main() -> None:
    """Chat with Qwen2.5-Max (or a Space built like its demo) from the terminal or a web page."""


SPACE_HELP = f"Space id (owner/name) or URL [default: ${SPACE_ENV}, else {DEFAULT_SPACE}]"


@main.command()
@click.option("--space", default=None, help=SPACE_HELP + "; 'replica' serves the offline replica")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to serve on.")
@click.option("--port", type=int, default=None, help="Port [default: 7860, or the next free one].")
@click.option(
    "--hf-token",
    envvar="HF_TOKEN",
    default=None,
    help="Hugging Face token for private or duplicated Spaces [env: HF_TOKEN].",
)
@click.option("--proxy", default=None, help="http(s) proxy URL for every request to the Space.")
def ui(
    space: str | None, host: str, port: int | None, hf_token: str | None, proxy: str | None
) -> None:
    """Serve a local web chat page for the Space (needs the 'ui' extra)."""
    try:
        from .ui import serve
    except ImportError as exc:
        raise click.ClickException(
            f"the web UI needs gradio: pip install 'qwen-gradio[ui]' ({exc})"
        ) from None
    serve(space, host=host, port=port, hf_token=hf_token, proxy=proxy)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=7860, show_default=True, help="0 picks a free port.")
@click.option(
    "--delay", type=float, default=0.03, show_default=True, help="Seconds between tokens."
)
def replica(host: str, port: int, delay: float) -> None:
    """Serve the offline replica of the Qwen2.5-Max Space (needs the 'ui' extra)."""
    try:
        from .replica import main as replica_main
    except ImportError as exc:  # pragma: no cover - replica.py imports gradio lazily
        raise click.ClickException(str(exc)) from None
    raise SystemExit(replica_main(["--host", host, "--port", str(port), "--delay", str(delay)]))
