"""Qwen-Agent's Assistant with a registered tool, its model served by qwen-gradio serve."""

import json
import os

from qwen_agent.agents import Assistant
from qwen_agent.tools.base import BaseTool, register_tool


@register_tool("get_weather")
class GetWeather(BaseTool):
    description = "The current weather in a city."
    parameters = {  # noqa: RUF012 - Qwen-Agent reads it as a class attribute
        "type": "object",
        "properties": {"city": {"type": "string", "description": "The city"}},
        "required": ["city"],
    }

    def call(self, params: str, **kwargs: object) -> str:
        return "sunny in " + json.loads(params)["city"]


llm = {"model": "qwen-2.5-max", "model_server": os.environ["BASE_URL"], "api_key": "unused"}
bot = Assistant(llm=llm, function_list=["get_weather"])
*_, last = bot.run([{"role": "user", "content": "What's the weather in Paris?"}])
print(last[-1]["content"])
