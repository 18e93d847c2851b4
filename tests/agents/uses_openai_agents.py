"""openai-agents: an Agent with a function tool, through the Responses API and chat completions."""

import os

from agents import (
    Agent,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    Runner,
    function_tool,
    set_tracing_disabled,
)
from openai import AsyncOpenAI

set_tracing_disabled(True)
client = AsyncOpenAI(base_url=os.environ["BASE_URL"], api_key="unused")


@function_tool
def get_weather(city: str) -> str:
    """The current weather in a city."""
    return f"sunny in {city}"


for model in (
    OpenAIResponsesModel("qwen-2.5-max", client),
    OpenAIChatCompletionsModel("qwen-2.5-max", client),
):
    agent = Agent(
        name="Forecaster", instructions="Answer briefly.", tools=[get_weather], model=model
    )
    print(Runner.run_sync(agent, "What's the weather in Paris?").final_output)
