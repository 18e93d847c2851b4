"""The public API is what ``__all__`` says: each name exported exists, is documented, and is
imported from the module that owns it; no public name of those modules is left out by accident."""

from __future__ import annotations

import inspect

import qwen_gradio

#: Public names of qwen_gradio's modules that are deliberately not re-exported at the top.
NOT_EXPORTED = {
    "stated_wait",
    "retry_after_header",
    "checked_options",
    "spaces_of",
    "HF_TOKEN_ENV",
    "MAX_INPUT_TOKENS_ENV",
    "SETTING_NAMES",
    "snake",
}


def test_all_is_sorted_and_every_name_exists() -> None:
    names = qwen_gradio.__all__

    def order(name: str) -> tuple[int, str]:  # ruff's (RUF022): constants, classes, the rest
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert names == sorted(names, key=order)
    assert len(names) == len(set(names))
    for name in names:
        assert hasattr(qwen_gradio, name), name


def test_every_exported_class_and_function_has_a_docstring() -> None:
    for name in qwen_gradio.__all__:
        member = getattr(qwen_gradio, name)
        if inspect.isclass(member) or inspect.isfunction(member):
            assert (member.__doc__ or "").strip(), f"{name} has no docstring"


def test_the_core_modules_public_names_are_exported() -> None:
    from qwen_gradio import errors, settings
    from qwen_gradio._client import streams
    from qwen_gradio._core import options

    for module in (errors, options, settings, streams):
        for name in module.__all__:
            if name not in NOT_EXPORTED:
                assert name in qwen_gradio.__all__, f"{module.__name__}.{name} is not exported"
                assert getattr(qwen_gradio, name) is getattr(module, name)


def test_importing_the_package_imports_no_front_end() -> None:
    """gradio, gradio_client, starlette and g4f stay out of ``import qwen_gradio``."""
    import subprocess
    import sys

    code = (
        "import sys, qwen_gradio; "
        "print(sorted(m for m in ('gradio', 'gradio_client', 'starlette', 'uvicorn', 'g4f')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_the_providers_shapes_are_importable_from_the_root_with_a_warning() -> None:
    """gpt4free's shapes live in qwen_gradio.provider; the root still answers for them (0.3's
    users) but names them deprecated, and keeps them out of ``__all__``."""
    import warnings

    from qwen_gradio import provider

    assert "Qwen_Qwen_2_5_Max" not in qwen_gradio.__all__
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert qwen_gradio.Qwen_Qwen_2_5_Max is provider.Qwen_Qwen_2_5_Max
    assert [w.category for w in caught] == [DeprecationWarning]
