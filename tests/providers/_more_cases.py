# ruff: noqa: E501  (documented error texts are quoted whole, one case per line)
"""Documented error responses of providers and servers beyond the first twelve: the
self-hosted OpenAI-compatible servers, gateways and hosted APIs users put in a chain.

Status, body and headers as each one's documentation (or its own error handler) shows
them; the kind a failover chain must give them. Judgement calls carry a comment.
"""

from __future__ import annotations

from typing import Any

from tests.providers._cases import A, Case, R, T, _an, _g, _oa


def _vllm(message: str, type_: str, code: int | str) -> Any:
    """vLLM and SGLang: an OpenAI-shaped error object with the status as its code."""
    return {"object": "error", "message": message, "type": type_, "param": None, "code": code}


VLLM = [
    Case(
        "400-context",
        400,
        _vllm(
            "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens (8000 in the messages, 1000 in the completion). Please reduce the length of the messages or completion.",
            "BadRequestError",
            400,
        ),
        R,
    ),
    Case(
        "400-context-code",
        400,
        _vllm(
            "The prompt is 9000 tokens; the maximum is 8192.",
            "BadRequestError",
            "context_length_exceeded",
        ),
        R,
    ),
    Case("404-model", 404, _vllm("The model `llama-9` does not exist.", "NotFoundError", 404), A),
    Case(
        "400-bad-param",
        400,
        _vllm("max_tokens must be at least 1, got -186.", "BadRequestError", 400),
        R,
    ),
    Case("401-key", 401, {"error": "Unauthorized"}, A),
    Case(
        "500-engine-dead",
        500,
        _vllm(
            "EngineCore encountered an issue. See stack trace for the root cause.",
            "InternalServerError",
            500,
        ),
        T,
    ),
    Case(
        "503-overloaded",
        503,
        _vllm("The server is overloaded, please retry later.", "ServiceUnavailableError", 503),
        T,
    ),
]

SGLANG = [
    Case(
        "400-context",
        400,
        _vllm(
            "Input length (9000 tokens) exceeds the maximum allowed length (8192 tokens). Use a shorter input or enable --allow-auto-truncate.",
            "BadRequestError",
            400,
        ),
        R,
    ),
    Case(
        "400-bad-json",
        400,
        _vllm("Invalid JSON schema in response_format", "BadRequestError", 400),
        R,
    ),
    Case("404-model", 404, _vllm("The model 'foo' does not exist", "NotFoundError", 404), A),
    Case("500-internal", 500, _vllm("Internal server error", "InternalServerError", 500), T),
    Case("503-unhealthy", 503, _vllm("Server is not healthy", "ServiceUnavailableError", 503), T),
]


def _lcpp(code: int, message: str, type_: str, **extra: Any) -> Any:
    """llama.cpp's server: code, message, type; context errors add token counts."""
    return {"error": {"code": code, "message": message, "type": type_, **extra}}


LLAMA_CPP = [
    Case(
        "400-exceed-context",
        400,
        _lcpp(
            400,
            "request (4390 tokens) exceeds the available context size (4096 tokens), try increasing it",
            "exceed_context_size_error",
            n_prompt_tokens=4390,
            n_ctx=4096,
        ),
        R,
    ),
    # judgement: older builds answer a context overflow with 500; the words decide
    Case("500-context-size", 500, _lcpp(500, "Context size has been exceeded.", "server_error"), R),
    Case("401-key", 401, _lcpp(401, "Invalid API Key", "authentication_error"), A),
    Case("404-model", 404, _lcpp(404, "model not found", "not_found_error"), A),
    Case(
        "400-invalid",
        400,
        _lcpp(400, '"prompt" must be a string or an array of tokens', "invalid_request_error"),
        R,
    ),
    Case(
        "501-not-supported",
        501,
        _lcpp(
            501,
            "This server does not support embeddings. Start it with `--embeddings`",
            "not_supported_error",
        ),
        T,
    ),
    Case("503-loading", 503, _lcpp(503, "Loading model", "unavailable_error"), T),
    Case("500-internal", 500, _lcpp(500, "Internal Server Error", "server_error"), T),
]


def _tgi(message: str, error_type: str) -> Any:
    """Text Generation Inference: a flat error and its type."""
    return {"error": message, "error_type": error_type}


TGI = [
    Case(
        "422-validation",
        422,
        _tgi(
            "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. Given: 4000 `inputs` tokens and 512 `max_new_tokens`",
            "validation",
        ),
        R,
    ),
    Case(
        "422-temperature",
        422,
        _tgi("Input validation error: `temperature` must be strictly positive", "validation"),
        R,
    ),
    Case(
        "424-generation",
        424,
        _tgi("Request failed during generation: Server error: CUDA out of memory", "generation"),
        T,
    ),
    Case("429-overloaded", 429, _tgi("Model is overloaded", "overloaded"), T),
    Case("500-incomplete", 500, _tgi("Incomplete generation", "incomplete_generation"), T),
]

LM_STUDIO = [
    # the family 3: nothing is loaded; every request fails alike until someone loads one
    Case(
        "400-no-models",
        400,
        {
            "error": "No models loaded. Please load a model in the developer page or use the `lms load` command."
        },
        A,
    ),
    Case(
        "404-model",
        404,
        _oa(
            'Model "qwen-9" not found. Please specify a valid model.',
            "invalid_request_error",
            "model_not_found",
            "model",
        ),
        A,
    ),
    Case(
        "400-context",
        400,
        {
            "error": "Trying to keep the first 5000 tokens when context the overflows. However, the model is loaded with context length of only 4096 tokens, which is not enough. Try to load the model with a larger context length, or provide a shorter input"
        },
        R,
    ),
    Case(
        "500-crashed",
        500,
        {"error": "The model has crashed without additional information. (Exit code: null)"},
        T,
    ),
]


def _or(code: int, message: str, **metadata: Any) -> Any:
    """OpenRouter: a numeric code equal to the status, a message, optional metadata."""
    error: dict[str, Any] = {"code": code, "message": message}
    if metadata:
        error["metadata"] = metadata
    return {"error": error}


OPENROUTER = [
    Case(
        "400-context",
        400,
        _or(
            400,
            "This endpoint's maximum context length is 131072 tokens. However, you requested about 200000 tokens (190000 of text input, 10000 in the output). Please reduce the length of either one.",
        ),
        R,
    ),
    Case("401-no-auth", 401, _or(401, "No auth credentials found"), A),
    Case("401-user", 401, _or(401, "User not found."), A),
    Case(
        "402-credits",
        402,
        _or(402, "Insufficient credits. Add more using https://openrouter.ai/credits"),
        A,
    ),
    Case(
        "403-moderation",
        403,
        _or(
            403,
            'meta-llama/llama-3-70b requires moderation on OpenRouter. Your input was flagged for "violence"',
            reasons=["violence"],
            flagged_input="...",
            provider_name="Fireworks",
            model_slug="meta-llama/llama-3-70b",
        ),
        R,
    ),
    Case("408-timeout", 408, _or(408, "Request timed out"), T),
    Case(
        "429-upstream",
        429,
        _or(
            429,
            "Provider returned error",
            raw="meta-llama/llama-3.3-70b-instruct:free is temporarily rate-limited upstream. Please retry shortly.",
            provider_name="Chutes",
        ),
        T,
    ),
    # a free model's daily allowance: nothing comes back for hours
    Case(
        "429-free-per-day",
        429,
        _or(
            429,
            "Rate limit exceeded: free-models-per-day. Add 10 credits to unlock 1000 free model requests per day",
        ),
        A,
    ),
    Case("502-provider", 502, _or(502, "Provider returned error", provider_name="Together"), T),
    Case(
        "503-no-provider",
        503,
        _or(503, "No allowed providers are available for the selected model."),
        T,
    ),
]


def _ds(message: str, type_: str, code: str | None = None) -> Any:
    return _oa(message, type_, code)


DEEPSEEK = [
    Case(
        "400-invalid-format",
        400,
        _ds(
            "Failed to deserialize the JSON body into the target type: messages[0]: missing field `content`",
            "invalid_request_error",
        ),
        R,
    ),
    Case(
        "400-context",
        400,
        _ds(
            "This model's maximum context length is 65536 tokens. However, you requested 70000 tokens (69000 in the messages, 1000 in the completion). Please reduce the length of the messages or completion.",
            "invalid_request_error",
        ),
        R,
    ),
    Case(
        "401-auth",
        401,
        _ds(
            "Authentication Fails, Your api key: ****abcd is invalid",
            "authentication_error",
            "invalid_request_error",
        ),
        A,
    ),
    Case(
        "402-balance", 402, _ds("Insufficient Balance", "unknown_error", "invalid_request_error"), A
    ),
    Case(
        "422-params",
        422,
        _ds("Invalid Parameters: temperature must be <= 2", "invalid_request_error"),
        R,
    ),
    Case("429-rate", 429, _ds("Rate Limit Reached", "rate_limit_error"), T),
    Case("500-server", 500, _ds("Server Error", "server_error"), T),
    Case("503-overloaded", 503, _ds("Server Overloaded", "server_error"), T),
]


def _xai(code: str, error: str) -> Any:
    """xAI: a gRPC-style status name as ``code`` and the message as ``error``."""
    return {"code": code, "error": error}


XAI = [
    # the family 4: xAI answers a bad key with 400
    Case(
        "400-bad-key",
        400,
        _xai(
            "Client specified an invalid argument",
            "Incorrect API key provided: xa***bc. You can obtain an API key from https://console.x.ai.",
        ),
        A,
    ),
    Case(
        "400-invalid",
        400,
        _xai(
            "Client specified an invalid argument",
            "The model expects a single `text` element per message.",
        ),
        R,
    ),
    Case(
        "400-context",
        400,
        _xai(
            "Client specified an invalid argument",
            "This model's maximum prompt length is 131072 but the request contains 140000 tokens.",
        ),
        R,
    ),
    Case(
        "403-no-credits",
        403,
        _xai(
            "The caller does not have permission to execute the specified operation",
            "Your newly created team doesn't have any credits yet. You can purchase credits on https://console.x.ai.",
        ),
        A,
    ),
    Case(
        "404-model",
        404,
        _xai(
            "Some requested entity was not found",
            "The model grok-9 does not exist or your team does not have access to it.",
        ),
        A,
    ),
    Case(
        "429-rate",
        429,
        _xai(
            "Some resource has been exhausted",
            "Too many requests: your team has exceeded its requests per second rate limit.",
        ),
        T,
    ),
    Case("500-internal", 500, _xai("Internal error", "Internal server error"), T),
    Case(
        "503-unavailable",
        503,
        _xai(
            "The service is currently unavailable", "Service temporarily unavailable. Please retry."
        ),
        T,
    ),
]

PERPLEXITY = [
    Case(
        "400-invalid-model",
        400,
        {
            "error": {
                "message": "Invalid model 'sonar-9'. Permitted models can be found in the documentation at https://docs.perplexity.ai/guides/model-cards.",
                "type": "invalid_model",
                "code": 400,
            }
        },
        A,
    ),
    Case(
        "400-invalid",
        400,
        {
            "error": {
                "message": "Invalid parameter: 'temperature' must be less than 2.",
                "type": "invalid_parameter",
                "code": 400,
            }
        },
        R,
    ),
    Case(
        "401-html",
        401,
        "<html><head><title>401 Authorization Required</title></head><body><center><h1>401 Authorization Required</h1></center></body></html>",
        A,
        content_type="text/html",
    ),
    Case(
        "402-credits",
        402,
        {
            "error": {
                "message": "You have insufficient credits. Please add credits to your account.",
                "type": "insufficient_quota",
                "code": 402,
            }
        },
        A,
    ),
    Case(
        "429-rate",
        429,
        {
            "error": {
                "message": "Rate limit exceeded. Please try again later.",
                "type": "rate_limit_exceeded",
                "code": 429,
            }
        },
        T,
    ),
    Case(
        "500-internal",
        500,
        {"error": {"message": "Internal server error", "type": "internal_error", "code": 500}},
        T,
    ),
]


def _cb(message: str, type_: str, param: str | None, code: str | None) -> Any:
    """Cerebras: the OpenAI fields at the top level."""
    return {"message": message, "type": type_, "param": param, "code": code}


CEREBRAS = [
    Case(
        "400-context",
        400,
        _cb(
            "Please reduce the length of the messages or completion. Current length is 140000 while limit is 131072",
            "invalid_request_error",
            "messages",
            "context_length_exceeded",
        ),
        R,
    ),
    Case(
        "401-key", 401, _cb("Wrong API Key", "invalid_request_error", "api_key", "wrong_api_key"), A
    ),
    Case(
        "402-payment",
        402,
        _cb(
            "Payment required: your account has no remaining credits.",
            "payment_required",
            None,
            "payment_required",
        ),
        A,
    ),
    Case(
        "404-model",
        404,
        _cb(
            "Model llama-9 does not exist or you do not have access to it.",
            "not_found_error",
            "model",
            "model_not_found",
        ),
        A,
    ),
    # the family 2: a per-minute throttle worded with "too many tokens"
    Case(
        "429-tpm",
        429,
        _cb(
            "Tokens per minute limit exceeded - too many tokens processed.",
            "too_many_tokens_error",
            "quota",
            "token_quota_exceeded",
        ),
        T,
    ),
    Case(
        "429-rpm",
        429,
        _cb(
            "Requests per minute limit exceeded - too many requests sent.",
            "too_many_requests_error",
            "quota",
            "request_quota_exceeded",
        ),
        T,
    ),
    # the family 1: the daily window is spent; nothing comes back for hours
    Case(
        "429-tpd",
        429,
        _cb(
            "Tokens per day limit exceeded - too many tokens processed.",
            "too_many_tokens_error",
            "quota",
            "token_quota_exceeded",
        ),
        A,
    ),
    Case(
        "429-queue",
        429,
        _cb(
            "We're experiencing high traffic right now! Please try again soon.",
            "too_many_requests_error",
            "queue",
            "queue_exceeded",
        ),
        T,
    ),
    Case("500-internal", 500, _cb("Internal server error", "internal_server_error", None, None), T),
    Case(
        "503-unavailable",
        503,
        _cb(
            "Service unavailable. Please try again later.", "service_unavailable_error", None, None
        ),
        T,
    ),
]

SAMBANOVA = [
    Case(
        "400-context",
        400,
        _oa(
            "The maximum context length of Meta-Llama-3.3-70B-Instruct is 131072. However, answering your request will take 140000 tokens.",
            "invalid_request_error",
            "context_length_exceeded",
        ),
        R,
    ),
    Case("401-key", 401, _oa("Invalid API key", "authentication_error", "invalid_api_key"), A),
    Case("404-model", 404, _oa("Model not found", "invalid_request_error", "model_not_found"), A),
    Case(
        "429-rpm",
        429,
        _oa(
            "Rate limit exceeded: 20 requests per minute",
            "rate_limit_exceeded",
            "rate_limit_exceeded",
        ),
        T,
    ),
    # a daily request cap on a free tier
    Case(
        "429-rpd",
        429,
        _oa(
            "Rate limit exceeded: you have used your 1000 requests per day",
            "rate_limit_exceeded",
            "rate_limit_exceeded",
        ),
        A,
    ),
    Case("500-internal", 500, _oa("Internal server error", "server_error", None), T),
    Case(
        "503-busy",
        503,
        _oa("The model is currently busy. Please try again later.", "server_error", None),
        T,
    ),
]


def _nim(status: int, title: str, detail: str) -> Any:
    """NVIDIA's hosted NIM endpoints: RFC 7807 problem details."""
    return {"type": "about:blank", "status": status, "title": title, "detail": detail}


NVIDIA_NIM = [
    Case("401-key", 401, _nim(401, "Unauthorized", "Authentication failed"), A),
    Case(
        "402-credits",
        402,
        _nim(
            402,
            "Payment Required",
            "Account 'abc': Cloud credits expired - Please contact NVIDIA representatives",
        ),
        A,
    ),
    Case("403-forbidden", 403, _nim(403, "Forbidden", "Authorization failed"), A),
    Case(
        "404-function",
        404,
        _nim(404, "Not Found", "Function 'abc': Not found for account 'xyz'"),
        A,
    ),
    Case(
        "400-context",
        400,
        {
            "object": "error",
            "message": "This model's maximum context length is 32768 tokens. However, you requested 40000 tokens. Please reduce the length of the messages or completion.",
            "type": "BadRequestError",
            "param": None,
            "code": 400,
        },
        R,
    ),
    Case(
        "422-validation",
        422,
        _nim(
            422,
            "Unprocessable Entity",
            "body -> temperature: Input should be less than or equal to 1",
        ),
        R,
    ),
    Case(
        "429-rate",
        429,
        _nim(429, "Too Many Requests", "Too many requests, please try again later"),
        T,
    ),
    Case("500-inference", 500, _nim(500, "Internal Server Error", "Inference error"), T),
    Case(
        "503-capacity", 503, _nim(503, "Service Unavailable", "Service temporarily at capacity"), T
    ),
]

HUGGING_FACE = [
    Case("401-token", 401, {"error": "Invalid credentials in Authorization header"}, A),
    Case(
        "402-credits",
        402,
        {
            "error": "You have exceeded your monthly included credits for Inference Providers. Subscribe to PRO to get 20x more monthly included credits."
        },
        A,
    ),
    Case("404-model", 404, {"error": "Model meta-llama/Llama-9 does not exist"}, A),
    Case(
        "400-not-supported",
        400,
        {
            "error": {
                "message": "The requested model 'foo/bar' is not supported by any provider you have enabled.",
                "type": "invalid_request_error",
                "param": "model",
                "code": "model_not_supported",
            }
        },
        A,
    ),
    Case(
        "422-validation",
        422,
        {
            "error": "Input validation error: `inputs` must have less than 4096 tokens. Given: 5000",
            "error_type": "validation",
        },
        R,
    ),
    Case(
        "429-rate",
        429,
        {
            "error": "Rate limit reached. You reached free usage limit (reset hourly). Please subscribe to a plan at https://huggingface.co/pricing to use the API at this rate"
        },
        T,
    ),
    Case(
        "503-loading",
        503,
        {
            "error": "Model meta-llama/Llama-3.1-8B-Instruct is currently loading",
            "estimated_time": 20.0,
        },
        T,
    ),
]


def _dash(code: str, message: str) -> Any:
    """DashScope's OpenAI-compatible mode: the code repeated as the type."""
    return {"error": {"code": code, "param": None, "message": message, "type": code}}


DASHSCOPE = [
    # the family 4: an account in arrears is answered with 400
    Case(
        "400-arrearage",
        400,
        _dash("Arrearage", "Access denied, please make sure your account is in good standing."),
        A,
    ),
    Case(
        "400-invalid",
        400,
        _dash("InvalidParameter", "Range of input length should be [1, 129024]"),
        R,
    ),
    Case(
        "400-inspection",
        400,
        _dash("data_inspection_failed", "Input data may contain inappropriate content."),
        R,
    ),
    Case("401-key", 401, _dash("invalid_api_key", "Incorrect API key provided. "), A),
    Case(
        "403-free-tier",
        403,
        _dash(
            "AllocationQuota.FreeTierOnly",
            'The free tier of the model has been exhausted. If you wish to continue access the model on a paid basis, please disable the "use free tier only" mode in the management console.',
        ),
        A,
    ),
    Case(
        "404-model",
        404,
        _dash(
            "model_not_found", "The model `qwen-9` does not exist or you do not have access to it."
        ),
        A,
    ),
    Case(
        "429-rate",
        429,
        _dash("Throttling.RateQuota", "Requests rate limit exceeded, please try again later."),
        T,
    ),
    Case(
        "429-tpm",
        429,
        _dash(
            "Throttling.AllocationQuota",
            "Allocated quota exceeded, please increase your quota limit.",
        ),
        T,
    ),
    Case(
        "500-internal",
        500,
        _dash(
            "InternalError",
            "An internal error has occured, please try again later or contact service support.",
        ),
        T,
    ),
    Case(
        "503-overloaded",
        503,
        _dash(
            "ServiceUnavailable",
            "Too many requests. Your requests are being throttled due to system capacity limits. Please try again later.",
        ),
        T,
    ),
]


def _ms(message: str, type_: str) -> Any:
    """Moonshot: message and type, no code."""
    return {"error": {"message": message, "type": type_}}


MOONSHOT = [
    Case(
        "400-context",
        400,
        _ms(
            "Invalid request: Your request exceeded model token limit: 8192",
            "invalid_request_error",
        ),
        R,
    ),
    Case(
        "400-invalid",
        400,
        _ms("Invalid request: temperature must be between 0 and 1", "invalid_request_error"),
        R,
    ),
    Case("401-auth", 401, _ms("Invalid Authentication", "invalid_authentication_error"), A),
    Case(
        "403-permission",
        403,
        _ms("You are not allowed to get other user info", "permission_denied_error"),
        A,
    ),
    Case(
        "404-model",
        404,
        _ms("Not found the model kimi-9 or Permission denied", "resource_not_found_error"),
        A,
    ),
    # Moonshot answers a suspended account or an empty balance with 429
    Case(
        "429-suspended",
        429,
        _ms(
            "Your account org-abc <ak-def> is suspended, please check your plan and billing details",
            "exceeded_current_quota_error",
        ),
        A,
    ),
    Case(
        "429-rpm",
        429,
        _ms(
            "Your account org-abc <ak-def> request reached organization max RPM: 3, please try again after 1 seconds",
            "rate_limit_reached_error",
        ),
        T,
    ),
    Case(
        "429-overloaded",
        429,
        _ms(
            "The engine is currently overloaded, please try again later", "engine_overloaded_error"
        ),
        T,
    ),
    Case("500-server", 500, _ms("Failed to extract file: internal error", "server_error"), T),
]


def _az(code: str, message: str) -> Any:
    """Azure AI Inference (and GitHub Models): code, message, details."""
    return {"error": {"code": code, "message": message, "details": message}}


AZURE_AI = [
    Case(
        "401-key",
        401,
        _az(
            "Unauthorized",
            "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.",
        ),
        A,
    ),
    # the family 3: the model named does not exist there
    Case("400-unknown-model", 400, _az("unknown_model", "Unknown model: gpt-9"), A),
    Case(
        "400-context",
        400,
        _az(
            "Bad Request",
            "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens. Please reduce the length of the messages.",
        ),
        R,
    ),
    Case(
        "400-content-filter",
        400,
        _az(
            "content_filter",
            "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
        ),
        R,
    ),
    Case(
        "429-minute",
        429,
        _az(
            "RateLimitReached",
            "Rate limit of 15 per 60s exceeded for UserByModelByMinute. Please wait 30 seconds before retrying.",
        ),
        T,
    ),
    # the family 1: a per-day window is spent
    Case(
        "429-day",
        429,
        _az(
            "RateLimitReached",
            "Rate limit of 150 per 86400s exceeded for UserByModelByDay. Please wait 40000 seconds before retrying.",
        ),
        A,
    ),
    Case(
        "500-internal",
        500,
        _az(
            "InternalServerError",
            "Backend returned unexpected response. Please contact Microsoft for help.",
        ),
        T,
    ),
]

ANTHROPIC_VERTEX = [
    Case(
        "400-invalid",
        400,
        _an("invalid_request_error", "messages: at least one message is required"),
        R,
    ),
    Case(
        "400-too-long",
        400,
        _an("invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"),
        R,
    ),
    Case(
        "401-unauthenticated",
        401,
        _g(
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
        ),
        A,
    ),
    Case(
        "403-permission",
        403,
        _g(
            403,
            "PERMISSION_DENIED",
            "Permission 'aiplatform.endpoints.predict' denied on resource '//aiplatform.googleapis.com/projects/p/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5' (or it may not exist).",
        ),
        A,
    ),
    Case(
        "404-model",
        404,
        _g(
            404,
            "NOT_FOUND",
            "Publisher Model `projects/p/locations/us-east5/publishers/anthropic/models/claude-9` not found.",
        ),
        A,
    ),
    Case(
        "429-quota",
        429,
        _g(
            429,
            "RESOURCE_EXHAUSTED",
            "Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model with base model: anthropic-claude-sonnet-4-5. Please submit a quota increase request.",
        ),
        T,
    ),
    Case(
        "429-anthropic",
        429,
        _an("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
        T,
    ),
    Case("529-overloaded", 529, _an("overloaded_error", "Overloaded"), T),
    Case("500-internal", 500, _g(500, "INTERNAL", "Internal error encountered."), T),
]


def _bedrock(error_type: str, status: int, message: str, kind: Any) -> Case:
    """Bedrock's InvokeModel (the Anthropic Bedrock client): JSON message, type in a header."""
    return Case(
        f"{status}-{error_type}",
        status,
        {"message": message},
        kind,
        {"x-amzn-ErrorType": f"{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/"},
    )


ANTHROPIC_BEDROCK = [
    _bedrock("ValidationException", 400, "messages: at least one message is required", R),
    _bedrock("ValidationException", 400, "Input is too long for requested model.", R),
    _bedrock(
        "AccessDeniedException",
        403,
        "You don't have access to the model with the specified model ID.",
        A,
    ),
    _bedrock(
        "UnrecognizedClientException",
        403,
        "The security token included in the request is invalid.",
        A,
    ),
    _bedrock(
        "ResourceNotFoundException",
        404,
        "Could not resolve the foundation model from the provided model identifier.",
        A,
    ),
    # the family 2: a throttle that says "too many tokens"
    _bedrock("ThrottlingException", 429, "Too many tokens, please wait before trying again.", T),
    _bedrock("ThrottlingException", 429, "Too many requests, please wait before trying again.", T),
    _bedrock("ServiceUnavailableException", 503, "Bedrock is unable to process your request.", T),
    _bedrock("ModelErrorException", 424, "The model returned an error.", T),
]

RESPONSES = [
    Case(
        "400-context",
        400,
        _oa(
            "Your input exceeds the context window of this model. Please adjust your input and try again.",
            "invalid_request_error",
            "context_length_exceeded",
            "input",
        ),
        R,
    ),
    Case(
        "401-key",
        401,
        _oa("Incorrect API key provided: sk-abc***.", "invalid_request_error", "invalid_api_key"),
        A,
    ),
    Case(
        "404-model",
        404,
        _oa(
            "The model `gpt-9` does not exist or you do not have access to it.",
            "invalid_request_error",
            "model_not_found",
            "model",
        ),
        A,
    ),
    Case(
        "400-unsupported-param",
        400,
        _oa(
            "Unsupported parameter: 'temperature' is not supported with this model.",
            "invalid_request_error",
            "unsupported_parameter",
            "temperature",
        ),
        R,
    ),
    Case(
        "429-tpm",
        429,
        _oa(
            "Rate limit reached for gpt-4.1 in organization org-x on tokens per min (TPM): Limit 30000, Used 30000, Requested 900. Please try again in 1.8s.",
            "tokens",
            "rate_limit_exceeded",
        ),
        T,
    ),
    Case(
        "429-quota",
        429,
        _oa(
            "You exceeded your current quota, please check your plan and billing details.",
            "insufficient_quota",
            "insufficient_quota",
        ),
        A,
    ),
    Case(
        "500-server",
        500,
        _oa(
            "The server had an error processing your request. Sorry about that!",
            "server_error",
            None,
        ),
        T,
    ),
]

MORE_CASES: dict[str, list[Case]] = {
    "vllm": VLLM,
    "sglang": SGLANG,
    "llama-cpp": LLAMA_CPP,
    "tgi": TGI,
    "lm-studio": LM_STUDIO,
    "openrouter": OPENROUTER,
    "deepseek": DEEPSEEK,
    "xai": XAI,
    "perplexity": PERPLEXITY,
    "cerebras": CEREBRAS,
    "sambanova": SAMBANOVA,
    "nvidia-nim": NVIDIA_NIM,
    "hugging-face": HUGGING_FACE,
    "dashscope": DASHSCOPE,
    "moonshot": MOONSHOT,
    "azure-ai": AZURE_AI,
    "anthropic-vertex": ANTHROPIC_VERTEX,
    "anthropic-bedrock": ANTHROPIC_BEDROCK,
    "responses": RESPONSES,
}
