"""Every client this suite drives: a provider's own SDK and its LangChain, LlamaIndex and
LiteLLM integrations, each pointed at the loopback server with its retries off.

A client is a factory: given the server's URL it returns a call that sends one chat
request. Factories import lazily, so a package that does not install only skips its rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Call = Callable[[], object]

HI = [{"role": "user", "content": "hi"}]


@dataclass(frozen=True)
class Client:
    """One way to reach a provider: ``needs`` are the modules that must import."""

    name: str
    needs: tuple[str, ...]
    make: Callable[[str], Call]
    broken: Callable[[], str | None] = lambda: None
    """Says why this install cannot send a request at all (an integration behind its SDK)."""


def _li_messages() -> list[Any]:
    from llama_index.core.llms import ChatMessage

    return [ChatMessage(role="user", content="hi")]


def _litellm(model: str, **extra: Any) -> Callable[[str], Call]:
    def make(url: str) -> Call:
        import litellm

        litellm.suppress_debug_info = True
        return lambda: litellm.completion(
            model=model, messages=HI, api_base=url, api_key="k", num_retries=0, **extra
        )

    return make


def _boto_config() -> Any:
    from botocore.config import Config

    return Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=5)


# -- OpenAI ----------------------------------------------------------------------------


def _openai(url: str) -> Call:
    import openai

    client = openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=0)
    return lambda: client.chat.completions.create(model="gpt-4o", messages=HI)  # type: ignore[arg-type]


def _lc_openai(url: str) -> Call:
    from langchain_openai import ChatOpenAI

    model = ChatOpenAI(model="gpt-4o", base_url=url + "/v1", api_key="k", max_retries=0)  # type: ignore[arg-type]
    return lambda: model.invoke("hi")


def _li_openai(url: str) -> Call:
    from llama_index.llms.openai import OpenAI

    llm = OpenAI(model="gpt-4o", api_base=url + "/v1", api_key="k", max_retries=0)
    return lambda: llm.chat(_li_messages())


# -- Azure OpenAI ----------------------------------------------------------------------

_AZURE_VERSION = "2024-10-21"


def _azure(url: str) -> Call:
    import openai

    client = openai.AzureOpenAI(
        azure_endpoint=url, api_key="k", api_version=_AZURE_VERSION, max_retries=0
    )
    return lambda: client.chat.completions.create(model="dep", messages=HI)  # type: ignore[arg-type]


def _lc_azure(url: str) -> Call:
    from langchain_openai import AzureChatOpenAI

    model = AzureChatOpenAI(
        azure_deployment="dep",
        azure_endpoint=url,
        api_key="k",  # type: ignore[arg-type]
        api_version=_AZURE_VERSION,
        max_retries=0,
    )
    return lambda: model.invoke("hi")


def _li_azure(url: str) -> Call:
    from llama_index.llms.azure_openai import AzureOpenAI

    llm = AzureOpenAI(
        engine="dep",
        model="gpt-4o",
        azure_endpoint=url,
        api_key="k",
        api_version=_AZURE_VERSION,
        max_retries=0,
    )
    return lambda: llm.chat(_li_messages())


# -- Anthropic -------------------------------------------------------------------------


def _anthropic(url: str) -> Call:
    import anthropic

    client = anthropic.Anthropic(base_url=url, api_key="k", max_retries=0)
    return lambda: client.messages.create(model="claude-sonnet-4-5", max_tokens=8, messages=HI)  # type: ignore[arg-type]


def _lc_anthropic(url: str) -> Call:
    from langchain_anthropic import ChatAnthropic

    model = ChatAnthropic(model="claude-sonnet-4-5", base_url=url, api_key="k", max_retries=0)  # type: ignore[call-arg,arg-type]
    return lambda: model.invoke("hi")


def _li_anthropic_broken() -> str | None:
    from anthropic.types import MessageParam

    try:
        MessageParam(role="user", content="hi")
    except TypeError as exc:  # llama-index-llms-anthropic builds messages this way
        return f"llama-index-llms-anthropic cannot build a request with this anthropic: {exc}"
    return None


def _li_anthropic(url: str) -> Call:
    from llama_index.llms.anthropic import Anthropic

    llm = Anthropic(model="claude-sonnet-4-5", base_url=url, api_key="k", max_retries=0)
    return lambda: llm.chat(_li_messages())


# -- Gemini ----------------------------------------------------------------------------


def _genai(url: str) -> Call:
    from google import genai
    from google.genai import types

    client = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=url))
    return lambda: client.models.generate_content(model="gemini-2.5-flash", contents="hi")


def _lc_genai(url: str) -> Call:
    from langchain_google_genai import ChatGoogleGenerativeAI

    model = ChatGoogleGenerativeAI(
        model="gemini-2.5-flash",
        google_api_key="k",  # type: ignore[arg-type]
        base_url=url,
        max_retries=0,
    )
    return lambda: model.invoke("hi")


def _li_genai(url: str) -> Call:
    from google.genai import types
    from llama_index.llms.google_genai import GoogleGenAI

    llm = GoogleGenAI(
        model="gemini-2.5-flash",
        api_key="k",
        http_options=types.HttpOptions(base_url=url),
        max_tokens=64,
        context_window=1_000_000,
        max_retries=0,
    )
    return lambda: llm.chat(_li_messages())


def _vertex_options() -> dict[str, Any]:
    from google.oauth2.credentials import Credentials

    credentials = Credentials(token="t")  # a fixed token: nothing to refresh, no network
    return {"project": "p", "location": "us-central1", "credentials": credentials}


def _genai_vertex(url: str) -> Call:
    from google import genai
    from google.genai import types

    client = genai.Client(
        vertexai=True, http_options=types.HttpOptions(base_url=url), **_vertex_options()
    )
    return lambda: client.models.generate_content(model="gemini-2.5-flash", contents="hi")


def _lc_genai_vertex(url: str) -> Call:
    from langchain_google_genai import ChatGoogleGenerativeAI

    model = ChatGoogleGenerativeAI(
        model="gemini-2.5-flash", vertexai=True, base_url=url, max_retries=0, **_vertex_options()
    )
    return lambda: model.invoke("hi")


def _li_genai_vertex(url: str) -> Call:
    from google.genai import types
    from llama_index.llms.google_genai import GoogleGenAI

    llm = GoogleGenAI(
        model="gemini-2.5-flash",
        vertexai_config=_vertex_options(),  # type: ignore[arg-type]
        http_options=types.HttpOptions(base_url=url),
        max_tokens=64,
        context_window=1_000_000,
        max_retries=0,
    )
    return lambda: llm.chat(_li_messages())


# -- Bedrock ---------------------------------------------------------------------------

_BEDROCK_MODEL = "anthropic.claude-3-5-sonnet-20241022-v2:0"
_AWS = {"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "secret"}


def _bedrock(url: str) -> Call:
    import boto3

    client = boto3.client(
        "bedrock-runtime", region_name="us-east-1", endpoint_url=url, config=_boto_config(), **_AWS
    )
    message = [{"role": "user", "content": [{"text": "hi"}]}]
    return lambda: client.converse(modelId=_BEDROCK_MODEL, messages=message)


def _lc_bedrock(url: str) -> Call:
    from langchain_aws import ChatBedrockConverse

    model = ChatBedrockConverse(
        model=_BEDROCK_MODEL,
        region_name="us-east-1",
        endpoint_url=url,
        config=_boto_config(),
        **_AWS,  # type: ignore[arg-type]
    )
    return lambda: model.invoke("hi")


def _li_bedrock(url: str) -> Call:
    from llama_index.llms.bedrock_converse import BedrockConverse

    llm = BedrockConverse(
        model=_BEDROCK_MODEL,
        region_name="us-east-1",
        endpoint_url=url,
        max_retries=1,
        **_AWS,
    )
    return lambda: llm.chat(_li_messages())


# -- Mistral ---------------------------------------------------------------------------


def _mistral(url: str) -> Call:
    from mistralai.client import Mistral

    client = Mistral(api_key="k", server_url=url)
    return lambda: client.chat.complete(model="mistral-small-latest", messages=HI)  # type: ignore[arg-type]


def _lc_mistral(url: str) -> Call:
    from langchain_mistralai import ChatMistralAI

    model = ChatMistralAI(
        model="mistral-small-latest",
        endpoint=url + "/v1",
        api_key="k",  # type: ignore[arg-type]
        max_retries=0,
    )
    return lambda: model.invoke("hi")


def _li_mistral(url: str) -> Call:
    from llama_index.llms.mistralai import MistralAI

    llm = MistralAI(model="mistral-small-latest", endpoint=url, api_key="k", max_retries=0)
    return lambda: llm.chat(_li_messages())


# -- Groq ------------------------------------------------------------------------------


def _groq(url: str) -> Call:
    import groq

    client = groq.Groq(base_url=url, api_key="k", max_retries=0)
    return lambda: client.chat.completions.create(model="llama-3.3-70b-versatile", messages=HI)  # type: ignore[arg-type]


def _lc_groq(url: str) -> Call:
    from langchain_groq import ChatGroq

    model = ChatGroq(model="llama-3.3-70b-versatile", base_url=url, api_key="k", max_retries=0)  # type: ignore[arg-type]
    return lambda: model.invoke("hi")


def _li_groq(url: str) -> Call:
    from llama_index.llms.groq import Groq

    llm = Groq(
        model="llama-3.3-70b-versatile", api_base=url + "/openai/v1", api_key="k", max_retries=0
    )
    return lambda: llm.chat(_li_messages())


# -- Cohere ----------------------------------------------------------------------------


def _cohere(url: str) -> Call:
    import cohere

    client = cohere.ClientV2(base_url=url, api_key="k")
    return lambda: client.chat(
        model="command-a-03-2025", messages=HI, request_options={"max_retries": 0}
    )


def _lc_cohere(url: str) -> Call:
    from langchain_cohere import ChatCohere

    model = ChatCohere(model="command-a-03-2025", base_url=url, cohere_api_key="k")  # type: ignore[call-arg,arg-type]
    return lambda: model.invoke("hi")


def _li_cohere(url: str) -> Call:
    from llama_index.llms.cohere import Cohere

    llm = Cohere(model="command-a-03-2025", base_url=url, api_key="k", max_retries=0)
    return lambda: llm.chat(_li_messages())


# -- Fireworks, Together: OpenAI-shaped APIs with SDKs of their own ----------------------


def _fireworks(url: str) -> Call:
    import fireworks

    client = fireworks.Fireworks(base_url=url, api_key="k", max_retries=0)
    model = "accounts/fireworks/models/llama-v3p1-8b-instruct"
    return lambda: client.chat.completions.create(model=model, messages=HI)  # type: ignore[arg-type]


def _lc_fireworks(url: str) -> Call:
    from langchain_fireworks import ChatFireworks

    model = ChatFireworks(
        model="accounts/fireworks/models/llama-v3p1-8b-instruct",
        base_url=url,
        api_key="k",  # type: ignore[arg-type]
        max_retries=0,
    )
    return lambda: model.invoke("hi")


def _together(url: str) -> Call:
    import together

    client = together.Together(base_url=url, api_key="k", max_retries=0)
    model = "meta-llama/Llama-3.3-70B-Instruct-Turbo"
    return lambda: client.chat.completions.create(model=model, messages=HI)  # type: ignore[arg-type]


def _lc_together(url: str) -> Call:
    from langchain_together import ChatTogether

    model = ChatTogether(
        model="meta-llama/Llama-3.3-70B-Instruct-Turbo",
        base_url=url + "/v1",
        api_key="k",  # type: ignore[arg-type]
        max_retries=0,
    )
    return lambda: model.invoke("hi")


# -- Ollama ----------------------------------------------------------------------------


def _ollama(url: str) -> Call:
    import ollama

    client = ollama.Client(host=url)
    return lambda: client.chat(model="llama3.2", messages=HI)


def _lc_ollama(url: str) -> Call:
    from langchain_ollama import ChatOllama

    model = ChatOllama(model="llama3.2", base_url=url)
    return lambda: model.invoke("hi")


def _li_ollama(url: str) -> Call:
    from llama_index.llms.ollama import Ollama

    llm = Ollama(model="llama3.2", base_url=url, request_timeout=10, context_window=8192)
    return lambda: llm.chat(_li_messages())


LC, LI, LL = "langchain_core", "llama_index.core", "litellm"

CLIENTS: dict[str, list[Client]] = {
    "openai": [
        Client("openai", ("openai",), _openai),
        Client("langchain-openai", (LC, "openai", "langchain_openai"), _lc_openai),
        Client("llama-index-openai", (LI, "openai", "llama_index.llms.openai"), _li_openai),
        Client("litellm-openai", (LL,), _litellm("openai/gpt-4o")),
    ],
    "azure": [
        Client("openai-azure", ("openai",), _azure),
        Client("langchain-azure", (LC, "openai", "langchain_openai"), _lc_azure),
        Client("llama-index-azure", (LI, "openai", "llama_index.llms.azure_openai"), _li_azure),
        Client("litellm-azure", (LL,), _litellm("azure/dep", api_version=_AZURE_VERSION)),
    ],
    "anthropic": [
        Client("anthropic", ("anthropic",), _anthropic),
        Client("langchain-anthropic", (LC, "anthropic", "langchain_anthropic"), _lc_anthropic),
        Client(
            "llama-index-anthropic",
            (LI, "llama_index.llms.anthropic"),
            _li_anthropic,
            _li_anthropic_broken,
        ),
        Client("litellm-anthropic", (LL,), _litellm("anthropic/claude-sonnet-4-5")),
    ],
    "gemini": [
        Client("google-genai", ("google.genai",), _genai),
        Client("langchain-google-genai", (LC, "google.genai", "langchain_google_genai"), _lc_genai),
        Client(
            "llama-index-google-genai",
            (LI, "google.genai", "llama_index.llms.google_genai"),
            _li_genai,
        ),
        Client("litellm-gemini", (LL,), _litellm("gemini/gemini-2.5-flash")),
    ],
    "vertex": [
        Client("google-genai-vertex", ("google.genai",), _genai_vertex),
        Client(
            "langchain-google-genai-vertex",
            (LC, "google.genai", "langchain_google_genai"),
            _lc_genai_vertex,
        ),
        Client(
            "llama-index-google-genai-vertex",
            (LI, "google.genai", "llama_index.llms.google_genai"),
            _li_genai_vertex,
        ),
    ],
    "bedrock": [
        Client("boto3", ("boto3",), _bedrock),
        Client("langchain-aws", (LC, "boto3", "langchain_aws"), _lc_bedrock),
        Client(
            "llama-index-bedrock-converse",
            (LI, "boto3", "llama_index.llms.bedrock_converse"),
            _li_bedrock,
        ),
        Client(
            "litellm-bedrock",
            (LL, "boto3"),
            _litellm(f"bedrock/converse/{_BEDROCK_MODEL}", aws_region_name="us-east-1", **_AWS),
        ),
    ],
    "mistral": [
        Client("mistralai", ("mistralai.client",), _mistral),
        Client("langchain-mistralai", (LC, "langchain_mistralai"), _lc_mistral),
        Client(
            "llama-index-mistralai",
            (LI, "mistralai.client", "llama_index.llms.mistralai"),
            _li_mistral,
        ),
        Client("litellm-mistral", (LL,), _litellm("mistral/mistral-small-latest")),
    ],
    "groq": [
        Client("groq", ("groq",), _groq),
        Client("langchain-groq", (LC, "groq", "langchain_groq"), _lc_groq),
        Client("llama-index-groq", (LI, "openai", "llama_index.llms.groq"), _li_groq),
        Client("litellm-groq", (LL,), _litellm("groq/llama-3.3-70b-versatile")),
    ],
    "cohere": [
        Client("cohere", ("cohere",), _cohere),
        Client("langchain-cohere", (LC, "cohere", "langchain_cohere"), _lc_cohere),
        Client("llama-index-cohere", (LI, "cohere", "llama_index.llms.cohere"), _li_cohere),
        Client("litellm-cohere", (LL,), _litellm("cohere_chat/command-a-03-2025")),
    ],
    "fireworks": [
        Client("fireworks", ("fireworks",), _fireworks),
        Client("langchain-fireworks", (LC, "fireworks", "langchain_fireworks"), _lc_fireworks),
        Client("litellm-fireworks", (LL,), _litellm("fireworks_ai/accounts/fireworks/models/x")),
    ],
    "together": [
        Client("together", ("together",), _together),
        Client("langchain-together", (LC, "openai", "langchain_together"), _lc_together),
        Client("litellm-together", (LL,), _litellm("together_ai/meta-llama/Llama-3.3-70B")),
    ],
    "ollama": [
        Client("ollama", ("ollama",), _ollama),
        Client("langchain-ollama", (LC, "ollama", "langchain_ollama"), _lc_ollama),
        Client("llama-index-ollama", (LI, "ollama", "llama_index.llms.ollama"), _li_ollama),
        Client("litellm-ollama", (LL,), _litellm("ollama_chat/llama3.2")),
    ],
}
