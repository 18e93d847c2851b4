"""The gradio_client internals qwen_gradio relies on (qwen_gradio/_compat.py): fail loudly."""

from __future__ import annotations

import gradio_client
import pytest
from packaging.version import Version

from qwen_gradio import IncompatibleGradioClientError
from qwen_gradio._compat import TESTED_GRADIO_CLIENT, check_gradio_client, connect


def test_the_installed_gradio_client_is_a_tested_one() -> None:
    low, high = (Version(bound.lstrip("<>=")) for bound in TESTED_GRADIO_CLIENT)
    installed = Version(gradio_client.__version__)
    assert low <= installed < high, (
        f"gradio_client {installed} is outside the tested range {TESTED_GRADIO_CLIENT}:"
        " run the suite against it and widen the range in pyproject.toml and _compat.py"
    )
    assert check_gradio_client() == gradio_client.__version__


@pytest.mark.parametrize(
    "missing",
    ["Client._telemetry_thread", "Client._get_config", "utils.TooManyRequestsError"],
)
def test_a_gradio_client_without_what_we_rely_on_is_refused(
    monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    # Simulates an incompatible release: an attribute qwen_gradio relies on is gone.
    owner, name = missing.split(".")
    target = gradio_client.Client if owner == "Client" else gradio_client.utils
    monkeypatch.delattr(target, name)
    with pytest.raises(IncompatibleGradioClientError, match=name):
        check_gradio_client()
    with pytest.raises(IncompatibleGradioClientError):
        connect("http://127.0.0.1:9/", hf_token=None, httpx_kwargs={}, user_agent="test")
