"""Clients of the providers in ``_more_cases``: each reached through its documented client
(the OpenAI SDK with a base URL for OpenAI-compatible APIs) and the LangChain, LlamaIndex
and LiteLLM integrations that reach it, pointed at the loopback server, retries off."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.providers._clients import HI, LC, LI, LL, Call, Client, _li_messages, _litellm

_MODEL = "m-1"


def _openai(path: str = "/v1") -> Callable[[str], Call]:
    def make(url: str) -> Call:
        import openai

        client = openai.OpenAI(base_url=url + path, api_key="k", max_retries=0)
        return lambda: client.chat.completions.create(model=_MODEL, messages=HI)  # type: ignore[arg-type]

    return make


def _lc_openai(path: str = "/v1") -> Callable[[str], Call]:
    def make(url: str) -> Call:
        from langchain_openai import ChatOpenAI

        model = ChatOpenAI(model=_MODEL, base_url=url + path, api_key="k", max_retries=0)  # type: ignore[arg-type]
        return lambda: model.invoke("hi")

    return make


def _li_openai_like(path: str = "/v1") -> Callable[[str], Call]:
    def make(url: str) -> Call:
        from llama_index.llms.openai_like import OpenAILike

        llm = OpenAILike(
            model=_MODEL, api_base=url + path, api_key="k", is_chat_model=True, max_retries=0
        )
        return lambda: llm.chat(_li_messages())

    return make


def _hf(url: str) -> Call:
    from huggingface_hub import InferenceClient

    client = InferenceClient(base_url=url, api_key="k")
    return lambda: client.chat_completion(messages=HI, max_tokens=8)


def _compatible(name: str, litellm_model: str, path: str = "/v1") -> list[Client]:
    """The four clients of an OpenAI-compatible API."""
    return [
        Client(f"openai-{name}", ("openai",), _openai(path)),
        Client(f"langchain-openai-{name}", (LC, "openai", "langchain_openai"), _lc_openai(path)),
        Client(
            f"llama-index-openai-like-{name}",
            (LI, "openai", "llama_index.llms.openai_like"),
            _li_openai_like(path),
        ),
        Client(f"litellm-{name}", (LL,), _litellm_at(litellm_model, path)),
    ]


def _litellm_at(model: str, path: str) -> Callable[[str], Call]:
    inner = _litellm(model)
    return lambda url: inner(url + path)


# -- Anthropic on Vertex and Bedrock ---------------------------------------------------


def _anthropic_vertex(url: str) -> Call:
    from anthropic import AnthropicVertex

    client = AnthropicVertex(
        region="us-east5", project_id="p", access_token="t", base_url=url, max_retries=0
    )
    return lambda: client.messages.create(
        model="claude-sonnet-4-5@20250929",
        max_tokens=8,
        messages=HI,  # type: ignore[arg-type]
    )


_BEDROCK_MODEL = "anthropic.claude-sonnet-4-5-20250929-v1:0"
_AWS = {"aws_access_key": "AKIDEXAMPLE", "aws_secret_key": "secret", "aws_region": "us-east-1"}


def _anthropic_bedrock(url: str) -> Call:
    from anthropic import AnthropicBedrock

    client = AnthropicBedrock(base_url=url, max_retries=0, **_AWS)
    return lambda: client.messages.create(model=_BEDROCK_MODEL, max_tokens=8, messages=HI)  # type: ignore[arg-type]


def _boto_invoke(url: str) -> Call:
    import json

    import boto3
    from botocore.config import Config

    client = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=url,
        config=Config(retries={"total_max_attempts": 1}),
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
    )
    body = json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 8, "messages": HI})
    return lambda: client.invoke_model(modelId=_BEDROCK_MODEL, body=body)


def _litellm_bedrock_invoke(url: str) -> Call:
    return _litellm(
        f"bedrock/invoke/{_BEDROCK_MODEL}",
        aws_region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
    )(url)


# -- the OpenAI Responses API -----------------------------------------------------------


def _responses(url: str) -> Call:
    import openai

    client = openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=0)
    return lambda: client.responses.create(model="gpt-4.1", input="hi")


def _lc_responses(url: str) -> Call:
    from langchain_openai import ChatOpenAI

    model = ChatOpenAI(
        model="gpt-4.1",
        base_url=url + "/v1",
        api_key="k",  # type: ignore[arg-type]
        max_retries=0,
        use_responses_api=True,
    )
    return lambda: model.invoke("hi")


def _li_responses(url: str) -> Call:
    from llama_index.llms.openai import OpenAIResponses

    llm = OpenAIResponses(model="gpt-4.1", api_base=url + "/v1", api_key="k", max_retries=0)
    return lambda: llm.chat(_li_messages())


def _litellm_responses(url: str) -> Call:
    import litellm

    litellm.suppress_debug_info = True
    return lambda: litellm.responses(
        model="openai/gpt-4.1", input="hi", api_base=url + "/v1", api_key="k", num_retries=0
    )


OA = ("openai",)
MORE_CLIENTS: dict[str, list[Client]] = {
    "vllm": _compatible("vllm", f"hosted_vllm/{_MODEL}"),
    "sglang": _compatible("sglang", f"openai/{_MODEL}"),
    "llama-cpp": _compatible("llama-cpp", f"openai/{_MODEL}"),
    "tgi": [
        *_compatible("tgi", f"openai/{_MODEL}"),
        Client("huggingface-hub-tgi", ("huggingface_hub",), _hf),
    ],
    "lm-studio": _compatible("lm-studio", f"lm_studio/{_MODEL}"),
    "openrouter": _compatible("openrouter", f"openrouter/{_MODEL}", "/api/v1"),
    "deepseek": _compatible("deepseek", "deepseek/deepseek-chat"),
    "xai": _compatible("xai", "xai/grok-3"),
    "perplexity": _compatible("perplexity", "openai/sonar"),
    "cerebras": _compatible("cerebras", "cerebras/llama-3.3-70b"),
    "sambanova": _compatible("sambanova", "sambanova/Meta-Llama-3.3-70B-Instruct"),
    "nvidia-nim": _compatible("nvidia-nim", "nvidia_nim/meta/llama-3.1-8b-instruct"),
    "hugging-face": [
        *_compatible("hf", f"openai/{_MODEL}"),
        Client("huggingface-hub", ("huggingface_hub",), _hf),
    ],
    "dashscope": _compatible("dashscope", "dashscope/qwen-plus", "/compatible-mode/v1"),
    "moonshot": _compatible("moonshot", "moonshot/kimi-k2"),
    "azure-ai": _compatible("azure-ai", f"azure_ai/{_MODEL}"),
    "anthropic-vertex": [
        Client("anthropic-vertex", ("anthropic", "google.auth"), _anthropic_vertex)
    ],
    "anthropic-bedrock": [
        Client("anthropic-bedrock", ("anthropic", "boto3"), _anthropic_bedrock),
        Client("boto3-invoke", ("boto3",), _boto_invoke),
        Client("litellm-bedrock-invoke", (LL, "boto3"), _litellm_bedrock_invoke),
    ],
    "responses": [
        Client("openai-responses", OA, _responses),
        Client("langchain-openai-responses", (LC, "openai", "langchain_openai"), _lc_responses),
        Client(
            "llama-index-openai-responses", (LI, "openai", "llama_index.llms.openai"), _li_responses
        ),
        Client("litellm-responses", (LL,), _litellm_responses),
    ],
}

__all__ = ["MORE_CLIENTS", "Any"]
