"""A chain given something that is not a model says so in one sentence (issue 27 item 4).

A model name, a completion LLM, an embeddings model or a model class put where a chat model
goes used to print pydantic's account of its own validators; now the error names what was
given, what is expected, and for names the way to build a chain from them.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_openai import ChatOpenAI, OpenAI, OpenAIEmbeddings
from llama_index.llms.openai import OpenAI as LlamaOpenAI

from langchain_failover import FailoverChatModel
from llamaindex_failover import FailoverLLM

WRONG_FOR_LANGCHAIN: list[tuple[Any, str]] = [
    (
        ["gpt-4o-mini"],
        r"models\[0\] is the string 'gpt-4o-mini': for model names use "
        r"FailoverChatModel\.from_specs\(",
    ),
    ([OpenAI(api_key="x")], r"models\[0\] is an OpenAI \(from langchain_openai\)$"),
    (
        [OpenAIEmbeddings(api_key="x")],
        r"models\[0\] is an OpenAIEmbeddings \(from langchain_openai\)$",
    ),
    ([ChatOpenAI], r"models\[0\] is the class ChatOpenAI itself.*ChatOpenAI\(model=\.\.\.\)$"),
    ({"primary": "gpt-4o"}, r"models\['primary'\] is the string 'gpt-4o'"),
]


@pytest.mark.parametrize(("models", "says"), WRONG_FOR_LANGCHAIN)
def test_a_wrong_langchain_member_is_one_sentence(models: Any, says: str) -> None:
    with pytest.raises(TypeError) as caught:
        FailoverChatModel(models=models)
    message = str(caught.value)
    assert message.startswith("expected LangChain chat models (BaseChatModel instances); ")
    assert "\n" not in message and "json-or-python" not in message
    assert caught.match(says)


def test_a_wrong_member_assigned_later_is_the_same_sentence() -> None:
    model = FailoverChatModel(models=[ChatOpenAI(api_key="x", max_retries=0)])
    with pytest.raises(TypeError, match=r"models\[0\] is the string 'gpt-4o-mini'"):
        model.models = ["gpt-4o-mini"]


@pytest.mark.parametrize(
    ("llms", "says"),
    [
        (["gpt-4o-mini"], r"llms\[0\] is the string 'gpt-4o-mini': build the model"),
        ([ChatOpenAI(api_key="x")], r"llms\[0\] is a ChatOpenAI \(from langchain_openai\)$"),
        ([LlamaOpenAI], r"llms\[0\] is the class OpenAI itself"),
    ],
)
def test_a_wrong_llamaindex_member_is_one_sentence(llms: Any, says: str) -> None:
    with pytest.raises(TypeError) as caught:
        FailoverLLM(llms=llms)
    assert str(caught.value).startswith("expected LlamaIndex LLMs (llama_index.core.llms.LLM")
    assert caught.match(says)


def test_the_other_adapters_option_name_gets_a_did_you_mean() -> None:
    with pytest.raises(TypeError, match=r"unexpected option 'llms'; did you mean 'models'\?$"):
        FailoverChatModel(llms=[ChatOpenAI(api_key="x", max_retries=0)])
    with pytest.raises(TypeError, match=r"unexpected option 'models'; did you mean 'llms'\?$"):
        FailoverLLM(models=[LlamaOpenAI(api_key="x", max_retries=0)])
