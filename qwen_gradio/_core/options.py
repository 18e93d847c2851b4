"""A Space's options: the extra inputs of its chat event besides (query, history, system), such
as the Qwen2.5 demo's "Model size" radio, each read from the Space's config with its choices,
range and default, and checked before any job is sent. No I/O here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidOptionError

__all__ = ["ChatOption", "snake"]

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def snake(label: str) -> str:
    """A label as a parameter name: "Model size" -> "model_size"."""
    return re.sub(r"[^0-9a-z]+", "_", label.lower()).strip("_")


@dataclass(frozen=True)
class ChatOption:
    """An extra input of the chat event besides (query, history, system): the Qwen2.5 demo's
    "Model size" radio, a temperature slider, a checkbox. Read from the Space's config (component
    type, choices, range, default) and API info (the parameter's name)."""

    name: str  # the API's parameter name, e.g. "model_size"
    label: str | None  # the component's label, e.g. "Model size"
    component: str  # radio | dropdown | slider | number | checkbox | textbox | other types
    position: int  # index among the event's inputs
    default: Any
    choices: tuple[tuple[str, Any], ...] | None = None  # (shown, value) pairs, when restricted
    multiselect: bool = False
    minimum: float | None = None
    maximum: float | None = None

    def matches(self, key: str) -> bool:
        """True if ``key`` names this option: its parameter name or its label, any case."""
        key = snake(key)
        return key == snake(self.name) or (self.label is not None and key == snake(self.label))

    def allowed(self) -> str:
        """The values it takes, for people: "72B, 32B, 14B, 7B", "0.0 to 2.0", "true or false"."""
        if self.choices is not None:
            return ", ".join(str(value) for _, value in self.choices)
        if self.component == "checkbox":
            return "true or false"
        if self.minimum is not None or self.maximum is not None:
            low = "" if self.minimum is None else f"{self.minimum:g}"
            high = "" if self.maximum is None else f"{self.maximum:g}"
            return f"{low} to {high}".strip()
        if self.component in ("slider", "number"):
            return "a number"
        return "any text" if self.component == "textbox" else "any value"

    def describe(self) -> str:
        """One line: "model_size (radio "Model size"): 72B, 32B, 14B, 7B; default 72B"."""
        label = f' "{self.label}"' if self.label else ""
        return f"{self.name} ({self.component}{label}): {self.allowed()}; default {self.default!r}"

    def check(self, value: Any) -> Any:
        """``value`` as the Space takes it; strings are read as the component's type ("0.7",
        "true"), a choice may be given by its shown name. Raises InvalidOptionError."""
        if self.choices is not None:
            return self._checked_choice(value)
        if self.component == "checkbox":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
                return value.lower() in _TRUE
            raise self._refuse(value)
        if self.component in ("slider", "number"):
            return self._checked_number(value)
        if self.component == "textbox" and not isinstance(value, str):
            raise self._refuse(value)
        return value

    def _checked_choice(self, value: Any) -> Any:
        """One of the choices (a list of them for a multiselect), by value or shown name."""
        assert self.choices is not None
        by_name = {str(shown): v for shown, v in self.choices}
        values = [v for _, v in self.choices]

        def one(item: Any) -> Any:
            if item in values:
                return item
            if str(item) in by_name:
                return by_name[str(item)]
            raise self._refuse(item)

        if not self.multiselect:
            return one(value)
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise self._refuse(value)
        return [one(item) for item in items]

    def _checked_number(self, value: Any) -> int | float:
        """A number within the component's range; a string is read as one ("3" an int)."""
        number = value
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                raise self._refuse(value) from None
            if number.is_integer() and re.fullmatch(r"\s*[-+]?\d+\s*", value):
                number = int(number)
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise self._refuse(value)
        if (self.minimum is not None and number < self.minimum) or (
            self.maximum is not None and number > self.maximum
        ):
            raise self._refuse(value)
        return number

    def _refuse(self, value: Any) -> InvalidOptionError:
        return InvalidOptionError(
            f"{value!r} is not a value of the Space's option {self.name!r}"
            f" ({self.component}); allowed: {self.allowed()}"
        )

    @classmethod
    def from_component(cls, component: dict[str, Any], position: int, name: str) -> ChatOption:
        props = component.get("props") or {}
        kind = str(component.get("type"))
        choices: tuple[tuple[str, Any], ...] | None = None
        raw = props.get("choices")
        restricted = kind == "radio" or (kind == "dropdown" and not props.get("allow_custom_value"))
        if restricted and isinstance(raw, list):
            choices = tuple(
                (str(c[0]), c[1]) if isinstance(c, (list, tuple)) and len(c) == 2 else (str(c), c)
                for c in raw
            )
        label = props.get("label")
        return cls(
            name=name,
            label=str(label) if label else None,
            component=kind,
            position=position,
            default=props.get("value"),
            choices=choices,
            multiselect=bool(props.get("multiselect")),
            minimum=props.get("minimum"),
            maximum=props.get("maximum"),
        )
