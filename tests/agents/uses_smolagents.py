"""smolagents: a ToolCallingAgent with a tool, and a CodeAgent whose reply runs past </code>."""

import os

from smolagents import CodeAgent, OpenAIServerModel, ToolCallingAgent, tool

model = OpenAIServerModel(
    model_id="qwen-2.5-max", api_base=os.environ["BASE_URL"], api_key="unused"
)


@tool
def get_weather(city: str) -> str:
    """The current weather in a city.

    Args:
        city: The city's name.
    """
    return f"sunny in {city}"


agent = ToolCallingAgent(tools=[get_weather], model=model, max_steps=3, verbosity_level=0)
print(agent.run("What's the weather in Paris?"))
# The replica writes this reply as it is (a /echo directive): a first step, then an invented
# observation and a second step, which the stop sequence "</code>" must keep from running.
task = (
    '/echo Thought: I know it.\n<code>\nfinal_answer("42")\n</code>\n'
    'Observation: 41\nThought: invented.\n<code>\nfinal_answer("wrong")\n</code>'
)
print(CodeAgent(tools=[], model=model, max_steps=2, verbosity_level=0).run(task))
