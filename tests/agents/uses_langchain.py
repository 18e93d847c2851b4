"""LangChain: bind_tools whole and streamed, one call at most, a call forced; with_structured_output
(json_schema, tools)."""

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


@tool
def get_time(zone: str) -> str:
    """The time now in a time zone."""
    return f"noon in {zone}"


# A reply that calls two tools, where one call at most is allowed (as LangGraph's supervisors
# ask): the first call alone.
two = '/calls [["get_weather", {"city": "Oslo"}], ["get_time", {"zone": "CET"}]] Checking.'
single = llm.bind_tools([get_weather, get_time], parallel_tool_calls=False).invoke(two)
print([call["name"] for call in single.tool_calls])
# A call forced ("any" is OpenAI's "required"), a reply in words: asked twice, then the words
# (for the graph to route on, as from a model that ignores tool_choice).
words = llm.bind_tools([get_weather], tool_choice="any").invoke("/calls [] Just words.")
print(repr(words.content), words.tool_calls)


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
