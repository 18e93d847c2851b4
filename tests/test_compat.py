"""The gradio_client internals qwen_gradio relies on
(qwen_gradio/_transports/gradio_client_internals.py): fail loudly."""

from __future__ import annotations

import gradio_client
import pytest
from packaging.version import Version

from qwen_gradio import IncompatibleGradioClientError
from qwen_gradio._transports.gradio_client_internals import (
    TESTED_GRADIO_CLIENT,
    check_gradio_client,
    close_client,
    connect,
)

from .conftest import Replica


def test_the_installed_gradio_client_is_a_tested_one() -> None:
    low, high = (Version(bound.lstrip("<>=")) for bound in TESTED_GRADIO_CLIENT)
    installed = Version(gradio_client.__version__)
    assert low <= installed < high, (
        f"gradio_client {installed} is outside the tested range {TESTED_GRADIO_CLIENT}:"
        " run the suite against it and widen the range in pyproject.toml and"
        " _transports/gradio_client_internals.py"
    )
    assert check_gradio_client() == gradio_client.__version__


@pytest.mark.parametrize(
    "missing",
    [
        "Client._telemetry_thread",
        "Client._get_config",
        "Client.new_helper",
        "Client.send_data",
        "Client.stream_messages",
        "utils.TooManyRequestsError",
        "utils.QueueError",
        "utils.Communicator",
        "client.build_hf_headers",
    ],
)
def test_a_gradio_client_without_what_we_rely_on_is_refused(
    monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    # Simulates an incompatible release: an attribute qwen_gradio relies on is gone.
    owner, name = missing.split(".")
    targets = {
        "Client": gradio_client.Client,
        "utils": gradio_client.utils,
        "client": gradio_client.client,
    }
    target = targets[owner]
    monkeypatch.delattr(target, name)
    with pytest.raises(IncompatibleGradioClientError, match=name):
        check_gradio_client()
    with pytest.raises(IncompatibleGradioClientError):
        connect("http://127.0.0.1:9/", hf_token=None, httpx_kwargs={}, user_agent="test")


def test_other_users_of_gradio_client_keep_huggingface_hubs_headers(replica6: Replica) -> None:
    """Ours are built without huggingface_hub (which may fetch from huggingface.co); any other
    caller in the process still gets huggingface_hub's own headers."""
    connection, client = connect(
        replica6.url + "/", hf_token="hf_x", httpx_kwargs={}, user_agent="ua/1"
    )
    close_client(client)
    assert connection.headers["x-hf-authorization"] == "Bearer hf_x"
    assert connection.headers["user-agent"] == "ua/1"
    theirs = gradio_client.client.build_hf_headers(
        token="hf_y", library_name="lib", library_version="2"
    )
    assert theirs["authorization"] == "Bearer hf_y" and "hf_hub/" in theirs["user-agent"]


def test_a_communicator_without_its_update_queue_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """transport="gradio_client" replaces a Job's ``updates`` queue and ``outputs`` list."""
    fields = dict(gradio_client.utils.Communicator.__dataclass_fields__)
    del fields["updates"]
    monkeypatch.setattr(gradio_client.utils.Communicator, "__dataclass_fields__", fields)
    with pytest.raises(IncompatibleGradioClientError, match=r"Communicator\.updates"):
        check_gradio_client()
