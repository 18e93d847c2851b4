"""pydantic-ai: an Agent with a tool, and one whose output_type is a model (an output tool)."""

import os

from pydantic import BaseModel
from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

model = OpenAIChatModel(
    "qwen-2.5-max", provider=OpenAIProvider(base_url=os.environ["BASE_URL"], api_key="unused")
)


def get_weather(city: str) -> str:
    """The current weather in a city."""
    return f"sunny in {city}"


agent = Agent(model, tools=[get_weather], instructions="Answer briefly.")
print(agent.run_sync("What's the weather in Paris?").output)


class City(BaseModel):
    name: str
    population: int


print(
    repr(
        Agent(model, output_type=City)
        .run_sync("Give the final result: Lyon has 520000 people")
        .output
    )
)
