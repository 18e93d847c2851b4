"""instructor in its default mode (TOOLS): a tool named after the model, tool_choice naming it."""

import os

import instructor
from openai import OpenAI
from pydantic import BaseModel


class City(BaseModel):
    name: str
    population: int


client = instructor.from_openai(OpenAI(base_url=os.environ["BASE_URL"], api_key="unused"))
print(
    repr(
        client.chat.completions.create(
            model="qwen-2.5-max",
            response_model=City,
            messages=[{"role": "user", "content": "Lyon has 520000 people"}],
        )
    )
)
