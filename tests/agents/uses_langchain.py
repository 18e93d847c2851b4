"""LangChain: bind_tools whole and streamed; with_structured_output (json_schema, tools)."""

import os

from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

llm = ChatOpenAI(model="qwen-2.5-max", base_url=os.environ["BASE_URL"], api_key="unused")


@tool
def get_weather(city: str) -> str:
    """The current weather in a city."""
    return f"sunny in {city}"


bound = llm.bind_tools([get_weather])
message = bound.invoke("What's the weather in Paris?")
print(message.tool_calls[0]["name"], message.tool_calls[0]["args"])
chunks = None
for chunk in bound.stream("What's the weather in Rome?"):
    chunks = chunk if chunks is None else chunks + chunk
print(chunks.tool_calls[0]["name"], chunks.tool_calls[0]["args"])


class City(BaseModel):
    """A city and its people."""

    name: str
    population: int


print(repr(llm.with_structured_output(City).invoke("Describe Lyon, 520000 people")))
print(
    repr(
        llm.with_structured_output(City, method="function_calling").invoke(
            "Describe the city Lyon, 520000 people"
        )
    )
)
