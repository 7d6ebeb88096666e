# ruff: noqa: E501  (documented error texts are quoted whole, one case per line)
"""Documented error responses, per provider: status, body (and headers) as each provider's
error documentation shows them, with the kind a failover chain must give them.

Judgement calls carry a comment; the README's classification table gives the reasons.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from failover_core import ErrorKind

T, A, R = ErrorKind.TRANSIENT, ErrorKind.AUTH_DEAD, ErrorKind.REQUEST_SPECIFIC


@dataclass(frozen=True)
class Case:
    """One documented error response and the kind it must get."""

    id: str
    status: int
    body: Any
    kind: ErrorKind
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


def _oa(message: str, type_: str | None, code: str | None, param: str | None = None) -> Any:
    """The OpenAI error envelope (Azure, Groq, Together and Fireworks reuse it)."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


OPENAI = [
    Case(
        "401-invalid_api_key",
        401,
        _oa(
            "Incorrect API key provided: sk-abc***. You can find your API key at https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            "invalid_api_key",
        ),
        A,
    ),
    Case(
        "401-no-organization",
        401,
        _oa(
            "You must be a member of an organization to use the API.",
            "invalid_request_error",
            "no_organization",
        ),
        A,
    ),
    Case(
        "403-unsupported-region",
        403,
        _oa(
            "Country, region, or territory not supported",
            "request_forbidden",
            "unsupported_country_region_territory",
        ),
        A,
    ),
    Case(
        "404-model_not_found",
        404,
        _oa(
            "The model `gpt-9` does not exist or you do not have access to it.",
            "invalid_request_error",
            "model_not_found",
        ),
        A,
    ),
    Case(
        "429-rpm",
        429,
        _oa(
            "Rate limit reached for gpt-4o in organization org-x on requests per min (RPM): Limit 500, Used 500, Requested 1. Please try again in 120ms.",
            "requests",
            "rate_limit_exceeded",
        ),
        T,
        {"retry-after": "0"},
    ),
    Case(
        "429-tpm",
        429,
        _oa(
            "Rate limit reached for gpt-4o in organization org-x on tokens per min (TPM): Limit 30000, Used 29000, Requested 2000. Please try again in 2s.",
            "tokens",
            "rate_limit_exceeded",
        ),
        T,
    ),
    # judgement: the request alone exceeds the whole per-minute budget; it can never succeed
    Case(
        "429-request-too-large",
        429,
        _oa(
            "Request too large for gpt-4o in organization org-x on tokens per min (TPM): Limit 30000, Requested 45000. The input or output tokens must be reduced in order to run successfully.",
            "tokens",
            "rate_limit_exceeded",
        ),
        R,
    ),
    Case(
        "429-insufficient_quota",
        429,
        _oa(
            "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
            "insufficient_quota",
            "insufficient_quota",
        ),
        A,
    ),
    Case(
        "429-billing_not_active",
        429,
        _oa(
            "Your account is not active, please check your billing details on our website.",
            "billing_not_active",
            "billing_not_active",
        ),
        A,
    ),
    Case(
        "400-context_length_exceeded",
        400,
        _oa(
            "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens. Please reduce the length of the messages.",
            "invalid_request_error",
            "context_length_exceeded",
            "messages",
        ),
        R,
    ),
    Case(
        "400-invalid_prompt",
        400,
        _oa(
            "Invalid prompt: your prompt was flagged as potentially violating our usage policy. Please try again with a different prompt.",
            "invalid_request_error",
            "invalid_prompt",
        ),
        R,
    ),
    Case(
        "400-content_policy_violation",
        400,
        _oa(
            "Your request was rejected as a result of our safety system.",
            "invalid_request_error",
            "content_policy_violation",
        ),
        R,
    ),
    Case(
        "400-invalid_value",
        400,
        _oa(
            "Invalid value for 'tool_choice': 'any'.",
            "invalid_request_error",
            "invalid_value",
            "tool_choice",
        ),
        R,
    ),
    Case(
        "500-server_error",
        500,
        _oa(
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            None,
        ),
        T,
    ),
    Case(
        "503-overloaded",
        503,
        _oa("The engine is currently overloaded, please try again later.", "server_error", None),
        T,
    ),
    Case("503-slow-down", 503, _oa("Slow Down", "server_error", "slow_down"), T),
    Case(
        "502-html",
        502,
        "<html><body><h1>502 Bad Gateway</h1></body></html>",
        T,
        content_type="text/html",
    ),
]

_AZ_429 = "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 6 seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit."

AZURE = [
    Case(
        "401-invalid-key",
        401,
        {
            "error": {
                "code": "401",
                "message": "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.",
            }
        },
        A,
    ),
    Case(
        "403-key-auth-disabled",
        403,
        {
            "error": {
                "code": "AuthenticationTypeDisabled",
                "message": "Key based authentication is disabled for this resource.",
            }
        },
        A,
    ),
    Case(
        "404-DeploymentNotFound",
        404,
        {
            "error": {
                "code": "DeploymentNotFound",
                "message": "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.",
            }
        },
        A,
    ),
    # judgement: the deployment's model cannot chat at all (an embedding model): model-dead
    Case(
        "400-OperationNotSupported",
        400,
        {
            "error": {
                "code": "OperationNotSupported",
                "message": "The chatCompletion operation does not work with the specified model, text-embedding-3-small. Please choose different model and try again.",
            }
        },
        A,
    ),
    Case(
        "429-token-rate",
        429,
        {"error": {"code": "429", "message": _AZ_429}},
        T,
        {"retry-after": "0"},
    ),
    Case(
        "400-content_filter",
        400,
        {
            "error": {
                "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry.",
                "type": None,
                "param": "prompt",
                "code": "content_filter",
                "status": 400,
                "innererror": {
                    "code": "ResponsibleAIPolicyViolation",
                    "content_filter_result": {"hate": {"filtered": True, "severity": "high"}},
                },
            }
        },
        R,
    ),
    Case(
        "400-context_length_exceeded",
        400,
        _oa(
            "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens. Please reduce the length of the messages.",
            "invalid_request_error",
            "context_length_exceeded",
            "messages",
        ),
        R,
    ),
    Case(
        "408-timeout",
        408,
        {"error": {"code": "Timeout", "message": "The operation was timeout."}},
        T,
    ),
    Case(
        "500-InternalServerError",
        500,
        {
            "error": {
                "code": "InternalServerError",
                "message": "The service is temporarily unable to process your request. Please try again later.",
            }
        },
        T,
    ),
    Case(
        "503-unavailable",
        503,
        {
            "error": {
                "code": "ServiceUnavailable",
                "message": "The service is temporarily unavailable.",
            }
        },
        T,
    ),
]


def _an(type_: str, message: str) -> Any:
    return {"type": "error", "error": {"type": type_, "message": message}, "request_id": "req_1"}


ANTHROPIC = [
    Case(
        "400-invalid_request_error",
        400,
        _an(
            "invalid_request_error", 'messages: roles must alternate between "user" and "assistant"'
        ),
        R,
    ),
    Case(
        "400-credit-balance",
        400,
        _an(
            "invalid_request_error",
            "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.",
        ),
        A,
    ),
    Case(
        "400-prompt-too-long",
        400,
        _an("invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"),
        R,
    ),
    Case("401-authentication_error", 401, _an("authentication_error", "invalid x-api-key"), A),
    Case(
        "402-billing_error",
        402,
        _an("billing_error", "There is an issue with your billing or payment information."),
        A,
    ),
    Case(
        "403-permission_error",
        403,
        _an(
            "permission_error",
            "Your API key does not have permission to use the specified resource.",
        ),
        A,
    ),
    Case("404-not_found_error", 404, _an("not_found_error", "model: claude-9"), A),
    Case(
        "413-request_too_large",
        413,
        _an("request_too_large", "Request exceeds the maximum allowed number of bytes."),
        R,
    ),
    Case(
        "429-rate_limit_error",
        429,
        _an(
            "rate_limit_error",
            "This request would exceed the rate limit for your organization of 50,000 input tokens per minute.",
        ),
        T,
        {"retry-after": "0"},
    ),
    Case("500-api_error", 500, _an("api_error", "Internal server error"), T),
    Case("504-timeout_error", 504, _an("timeout_error", "Request timed out"), T),
    Case("529-overloaded_error", 529, _an("overloaded_error", "Overloaded"), T),
]


def _g(code: int, status: str, message: str, *details: Any) -> Any:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = list(details)
    return {"error": error}


_QUOTA_MSG = "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."


def _quota(quota_id: str) -> Any:
    return {
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": [
            {
                "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                "quotaId": quota_id,
                "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash"},
                "quotaValue": "250",
            }
        ],
    }


_RETRY = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0s"}
_KEY_INVALID = {
    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
    "reason": "API_KEY_INVALID",
    "domain": "googleapis.com",
    "metadata": {"service": "generativelanguage.googleapis.com"},
}

GEMINI = [
    Case(
        "400-INVALID_ARGUMENT",
        400,
        _g(400, "INVALID_ARGUMENT", "Request contains an invalid argument."),
        R,
    ),
    Case(
        "400-API_KEY_INVALID",
        400,
        _g(
            400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", _KEY_INVALID
        ),
        A,
    ),
    Case(
        "400-FAILED_PRECONDITION-billing",
        400,
        _g(
            400,
            "FAILED_PRECONDITION",
            "Gemini API free tier is not available in your country. Please enable billing on your project in Google AI Studio.",
        ),
        A,
    ),
    Case(
        "400-FAILED_PRECONDITION-location",
        400,
        _g(400, "FAILED_PRECONDITION", "User location is not supported for the API use."),
        A,
    ),
    Case(
        "400-too-many-tokens",
        400,
        _g(
            400,
            "INVALID_ARGUMENT",
            "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
        ),
        R,
    ),
    Case(
        "403-PERMISSION_DENIED",
        403,
        _g(
            403,
            "PERMISSION_DENIED",
            "Your API key was reported as leaked. Please use another API key.",
        ),
        A,
    ),
    Case(
        "404-NOT_FOUND",
        404,
        _g(
            404,
            "NOT_FOUND",
            "models/gemini-9 is not found for API version v1beta, or is not supported for generateContent.",
        ),
        A,
    ),
    Case(
        "429-per-minute",
        429,
        _g(
            429,
            "RESOURCE_EXHAUSTED",
            _QUOTA_MSG,
            _quota("GenerateRequestsPerMinutePerProjectPerModel-FreeTier"),
            _RETRY,
        ),
        T,
    ),
    # judgement: a per-day quota comes back tomorrow: bench like billing
    Case(
        "429-per-day",
        429,
        _g(
            429,
            "RESOURCE_EXHAUSTED",
            _QUOTA_MSG,
            _quota("GenerateRequestsPerDayPerProjectPerModel-FreeTier"),
            _RETRY,
        ),
        A,
    ),
    Case(
        "429-no-details",
        429,
        _g(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
        T,
    ),
    Case("499-CANCELLED", 499, _g(499, "CANCELLED", "The operation was cancelled."), T),
    Case(
        "500-INTERNAL",
        500,
        _g(
            500,
            "INTERNAL",
            "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
        ),
        T,
    ),
    Case(
        "503-UNAVAILABLE",
        503,
        _g(503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
        T,
    ),
    Case(
        "504-DEADLINE_EXCEEDED",
        504,
        _g(504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
        T,
    ),
]

# Vertex AI: the same envelope, its own wording
VERTEX = [
    Case(
        "vertex-429",
        429,
        _g(
            429,
            "RESOURCE_EXHAUSTED",
            "Resource exhausted. Please try again later. Please refer to https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details.",
        ),
        T,
    ),
    Case(
        "vertex-403",
        403,
        _g(
            403,
            "PERMISSION_DENIED",
            "Permission 'aiplatform.endpoints.predict' denied on resource '//aiplatform.googleapis.com/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-flash' (or it may not exist).",
        ),
        A,
    ),
    Case(
        "vertex-404",
        404,
        _g(
            404,
            "NOT_FOUND",
            "Publisher Model `projects/p/locations/us-central1/publishers/google/models/gemini-9` was not found or your project does not have access to it.",
        ),
        A,
    ),
    Case(
        "vertex-400-FAILED_PRECONDITION",
        400,
        _g(
            400,
            "FAILED_PRECONDITION",
            "Project `p` is not allowed to use Publisher Model `gemini-2.5-pro`.",
        ),
        A,
    ),
    Case(
        "vertex-400-too-long",
        400,
        _g(
            400,
            "INVALID_ARGUMENT",
            "Unable to submit request because the input token count is 1100000 but model only supports up to 1048576. Reduce the input token count and try again.",
        ),
        R,
    ),
    Case("500", 500, _g(500, "INTERNAL", "Internal error encountered."), T),
    Case("503", 503, _g(503, "UNAVAILABLE", "Service is currently unavailable."), T),
]


def _aws(code: str, status: int, message: str, kind: ErrorKind) -> Case:
    """A rest-json AWS error: the code in the header and the body, as Bedrock sends it."""
    return Case(
        f"{status}-{code}-{message[:24]}",
        status,
        {"message": message},
        kind,
        {"x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/com.amazon.bedrock/"},
        "application/json",
    )


BEDROCK = [
    _aws(
        "ValidationException",
        400,
        "Malformed input request: #: required key [messages] not found, please reformat your input and try again.",
        R,
    ),
    _aws("ValidationException", 400, "Input is too long for requested model.", R),
    _aws(
        "ValidationException",
        400,
        "The model returned the following errors: prompt is too long: 210000 tokens > 200000 maximum",
        R,
    ),
    # the model cannot be invoked this way at all: every request fails alike (model-dead)
    _aws(
        "ValidationException",
        400,
        "Invocation of model ID anthropic.claude-3-5-sonnet-20241022-v2:0 with on-demand throughput isn\u2019t supported. Retry your request with the ID or ARN of an inference profile that contains this model.",
        A,
    ),
    _aws("ValidationException", 400, "The provided model identifier is invalid.", A),
    _aws(
        "AccessDeniedException",
        403,
        "You don't have access to the model with the specified model ID.",
        A,
    ),
    _aws(
        "UnrecognizedClientException",
        403,
        "The security token included in the request is invalid.",
        A,
    ),
    _aws("ExpiredTokenException", 403, "The security token included in the request is expired", A),
    _aws(
        "ResourceNotFoundException",
        404,
        "This model version has reached the end of its life. Please refer to the AWS documentation for more details.",
        A,
    ),
    _aws("ThrottlingException", 429, "Too many requests, please wait before trying again.", T),
    # judgement: a daily token quota comes back tomorrow, like Gemini's per-day quota
    _aws(
        "ThrottlingException", 429, "Too many tokens per day, please wait before trying again.", A
    ),
    _aws(
        "ServiceQuotaExceededException",
        400,
        "Your request exceeds the service quota for your account. You can view your service quotas at Viewing service quotas. You can resubmit your request later.",
        T,
    ),
    _aws("ModelTimeoutException", 408, "Model has timed out in processing the request.", T),
    _aws("ModelNotReadyException", 429, "The model is not ready to serve inference requests.", T),
    _aws(
        "ModelErrorException",
        424,
        "The request failed due to an error while processing the model.",
        T,
    ),
    _aws(
        "InternalServerException", 500, "An internal server error occurred. Retry your request.", T
    ),
    _aws("ServiceUnavailableException", 503, "Bedrock is unable to process your request.", T),
]


def _mi(message: Any, type_: str, code: str | None) -> Any:
    return {"object": "error", "message": message, "type": type_, "param": None, "code": code}


MISTRAL = [
    Case("401-unauthorized", 401, {"message": "Unauthorized", "request_id": "abc"}, A),
    Case("400-invalid_model", 400, _mi("Invalid model: mistral-9", "invalid_model", "1500"), A),
    Case(
        "400-too-large",
        400,
        _mi(
            "Prompt contains 40000 tokens and 0 draft tokens, too large for model with 32768 maximum context length",
            "invalid_request_error",
            "3051",
        ),
        R,
    ),
    Case(
        "422-validation",
        422,
        _mi(
            {"detail": [{"type": "missing", "loc": ["body", "messages"], "msg": "Field required"}]},
            "invalid_request_error",
            None,
        ),
        R,
    ),
    Case("429-rate", 429, {"message": "Requests rate limit exceeded"}, T),
    Case(
        "429-capacity",
        429,
        _mi(
            "Service tier capacity exceeded for this model.",
            "service_tier_capacity_exceeded",
            "3505",
        ),
        T,
    ),
    Case("500-internal", 500, _mi("Internal server error", "internal_server_error", None), T),
    Case("503-unavailable", 503, {"message": "Service unavailable"}, T),
]

GROQ = [
    Case(
        "400-invalid_request_error",
        400,
        _oa("'messages' : minimum number of items is 1", "invalid_request_error", None),
        R,
    ),
    Case(
        "400-model_decommissioned",
        400,
        _oa(
            "The model `mixtral-8x7b-32768` has been decommissioned and is no longer supported. Please refer to https://console.groq.com/docs/deprecations for a recommendation on which model to use instead.",
            "invalid_request_error",
            "model_decommissioned",
        ),
        A,
    ),
    Case(
        "400-organization_restricted",
        400,
        _oa(
            "Organization has been restricted. Please reach out to support if you believe this was in error.",
            "invalid_request_error",
            "organization_restricted",
        ),
        A,
    ),
    Case(
        "400-tool_use_failed",
        400,
        _oa(
            "Failed to call a function. Please adjust your prompt. See 'failed_generation' for more details.",
            "invalid_request_error",
            "tool_use_failed",
        ),
        R,
    ),
    Case(
        "401-invalid_api_key",
        401,
        _oa("Invalid API Key", "invalid_request_error", "invalid_api_key"),
        A,
    ),
    Case(
        "404-model_not_found",
        404,
        _oa(
            "The model `llama-9` does not exist or you do not have access to it.",
            "invalid_request_error",
            "model_not_found",
        ),
        A,
    ),
    Case(
        "413-entity-too-large",
        413,
        _oa("Request Entity Too Large", "invalid_request_error", None),
        R,
    ),
    # judgement: the request alone exceeds the per-minute token budget: never succeeds there
    Case(
        "413-tpm-too-large",
        413,
        _oa(
            "Request too large for model `llama-3.3-70b-versatile` in organization `org_x` service tier `on_demand` on tokens per minute (TPM): Limit 12000, Requested 20000, please reduce your message size and try again.",
            "tokens",
            "rate_limit_exceeded",
        ),
        R,
    ),
    Case("422-unprocessable", 422, _oa("Unprocessable Entity", "invalid_request_error", None), R),
    Case(
        "429-tpm",
        429,
        _oa(
            "Rate limit reached for model `llama-3.3-70b-versatile` in organization `org_x` service tier `on_demand` on tokens per minute (TPM): Limit 6000, Used 5000, Requested 2000. Please try again in 10s.",
            "tokens",
            "rate_limit_exceeded",
        ),
        T,
        {"retry-after": "0"},
    ),
    # judgement: tokens per day: nothing comes back within the retries
    Case(
        "429-tpd",
        429,
        _oa(
            "Rate limit reached for model `llama-3.3-70b-versatile` in organization `org_x` service tier `on_demand` on tokens per day (TPD): Limit 100000, Used 99000, Requested 2000. Please try again in 28m48s.",
            "tokens",
            "rate_limit_exceeded",
        ),
        A,
        {"retry-after": "0"},
    ),
    Case(
        "498-capacity_exceeded",
        498,
        _oa(
            "Flex tier capacity exceeded. This is a temporary error due to high demand.",
            "capacity_exceeded",
            "capacity_exceeded",
        ),
        T,
    ),
    Case("499-cancelled", 499, _oa("Request cancelled", "request_cancelled", None), T),
    Case("500-internal", 500, _oa("Internal Server Error", "internal_server_error", None), T),
    Case("502-bad-gateway", 502, _oa("Bad Gateway", "bad_gateway", None), T),
    Case(
        "503-unavailable",
        503,
        _oa(
            "Service Unavailable: the server is temporarily unable to handle the request.",
            "service_unavailable",
            None,
        ),
        T,
    ),
]

COHERE = [
    Case(
        "400-invalid",
        400,
        {
            "message": "invalid request: message must be at least 1 token long or tool results must be specified."
        },
        R,
    ),
    Case(
        "400-too-many-tokens",
        400,
        {
            "message": "too many tokens: size limit exceeded by 1000 tokens. Try using shorter or fewer inputs, or setting prompt_truncation='AUTO'."
        },
        R,
    ),
    Case("401-invalid-token", 401, {"message": "invalid api token"}, A),
    Case(
        "402-payment",
        402,
        {
            "message": "Please add or update your payment method at https://dashboard.cohere.com/billing?tab=payment to continue"
        },
        A,
    ),
    Case(
        "404-model",
        404,
        {
            "message": "model 'command-9' not found, make sure the correct model ID was used and that you have access to the model."
        },
        A,
    ),
    Case(
        "422-unprocessable",
        422,
        {"message": "invalid request: temperature must be between 0 and 1"},
        R,
    ),
    Case(
        "429-per-minute",
        429,
        {"message": "You are past the per minute request limit, please wait and try again later."},
        T,
    ),
    Case(
        "429-trial-minute",
        429,
        {
            "message": "You are using a Trial key, which is limited to 20 API calls / minute. You can continue to use the Trial key for free or upgrade to a Production key with higher rate limits at 'https://dashboard.cohere.com/api-keys'."
        },
        T,
    ),
    # judgement: a monthly cap comes back next month: bench like billing
    Case(
        "429-trial-month",
        429,
        {
            "message": "You are using a Trial key, which is limited to 1000 API calls / month. You can continue to use the Trial key for free or upgrade to a Production key with higher rate limits at 'https://dashboard.cohere.com/api-keys'."
        },
        A,
    ),
    Case(
        "429-token-rate",
        429,
        {"message": "trial token rate limit exceeded, limit is 100000 tokens per minute"},
        T,
    ),
    # Cohere's 498 is a bad token (Groq's 498 is a busy flex tier): the body decides
    Case("498-invalid-token", 498, {"message": "invalid token"}, A),
    Case("499-cancelled", 499, {"message": "request cancelled"}, T),
    Case(
        "500-internal",
        500,
        {"message": "internal server error, this has been reported to our developers. id 123"},
        T,
    ),
    Case("503-unavailable", 503, {"message": "service unavailable"}, T),
    Case("504-timeout", 504, {"message": "gateway timeout"}, T),
]


def _fw(message: str, type_: str, code: str | None = None) -> Any:
    return {"error": {"object": "error", "type": type_, "code": code, "message": message}}


FIREWORKS = [
    Case(
        "400-too-long",
        400,
        _fw(
            "The prompt is too long: 140000, model maximum context length: 131072",
            "invalid_request_error",
        ),
        R,
    ),
    Case(
        "401-invalid-key",
        401,
        _fw("The API key you provided is invalid.", "invalid_request_error"),
        A,
    ),
    Case(
        "402-payment",
        402,
        _fw(
            "Account is suspended, possibly due to reaching the monthly spending limit or failure to pay past invoices.",
            "invalid_request_error",
        ),
        A,
    ),
    Case("403-forbidden", 403, _fw("Forbidden", "invalid_request_error"), A),
    Case(
        "404-model",
        404,
        _fw("Model not found, inaccessible, and/or not deployed", "not_found_error"),
        A,
    ),
    Case("408-timeout", 408, _fw("Request timed out", "timeout_error"), T),
    # judgement: a suspended account or a LoRA that failed to load: nothing works until fixed
    Case(
        "412-precondition",
        412,
        _fw("Account is suspended. Please contact support.", "invalid_request_error"),
        A,
    ),
    Case("413-too-large", 413, _fw("Request Entity Too Large", "invalid_request_error"), R),
    Case("429-rate", 429, _fw("Rate limit exceeded. Please retry later.", "rate_limit_error"), T),
    Case("500-internal", 500, _fw("Internal server error", "internal_server_error"), T),
    Case("503-unavailable", 503, _fw("Service temporarily unavailable", "service_unavailable"), T),
]

TOGETHER = [
    Case(
        "400-invalid",
        400,
        _oa("Invalid request: messages is required", "invalid_request_error", None),
        R,
    ),
    Case(
        "401-invalid-key",
        401,
        _oa(
            "Invalid API key provided. You can find your API key at https://api.together.xyz/settings/api-keys.",
            "invalid_request_error",
            "invalid_api_key",
        ),
        A,
    ),
    Case(
        "402-credit",
        402,
        _oa(
            "Credit limit exceeded. Please navigate to https://api.together.xyz/settings/billing to add credit or upgrade your plan.",
            "credit_limit",
            None,
        ),
        A,
    ),
    # Together documents 403 for a prompt longer than the model's context
    Case(
        "403-context-length",
        403,
        _oa(
            "Input token count + max_tokens parameter must be less than the context length of the model being queried.",
            "invalid_request_error",
            None,
        ),
        R,
    ),
    Case(
        "403-input-validation",
        403,
        _oa(
            "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 32769. Given: 33000 `inputs` tokens and 512 `max_new_tokens`",
            "invalid_request_error",
            None,
        ),
        R,
    ),
    Case(
        "404-model",
        404,
        _oa(
            "Unable to access model meta-llama/Llama-9. Please visit https://api.together.ai/models to view the list of supported models.",
            "invalid_request_error",
            "model_not_available",
        ),
        A,
    ),
    Case(
        "429-rate",
        429,
        _oa(
            "You have reached the rate limit specific to this model meta-llama/Llama-3.3-70B-Instruct-Turbo. The maximum rate limit for this model is 600.0 queries and 180000 tokens per minute.",
            "model_rate_limit",
            None,
        ),
        T,
    ),
    Case("500-server", 500, _oa("Internal server error", "server_error", None), T),
    Case(
        "503-overloaded",
        503,
        _oa("The server is overloaded or not ready yet.", "server_error", None),
        T,
    ),
    Case("524-timeout", 524, "<html>524: A timeout occurred</html>", T, content_type="text/html"),
]

OLLAMA = [
    Case("404-not-pulled", 404, {"error": 'model "llama9" not found, try pulling it first'}, A),
    Case("400-invalid-options", 400, {"error": "invalid options: foo"}, R),
    # judgement: the request asked for tools this model lacks; other requests may succeed
    Case(
        "400-no-tools",
        400,
        {"error": "registry.ollama.ai/library/gemma:2b does not support tools"},
        R,
    ),
    Case("401-unauthorized", 401, {"error": "unauthorized"}, A),
    Case(
        "500-runner-terminated",
        500,
        {"error": "llama runner process has terminated: exit status 2"},
        T,
    ),
    # judgement: the model cannot load on this host until someone frees memory
    Case(
        "500-out-of-memory",
        500,
        {"error": "model requires more system memory (16.0 GiB) than is available (8.0 GiB)"},
        A,
    ),
    Case(
        "503-busy",
        503,
        {"error": "server busy, please try again.  maximum pending requests exceeded"},
        T,
    ),
]

CASES: dict[str, list[Case]] = {
    "openai": OPENAI,
    "azure": AZURE,
    "anthropic": ANTHROPIC,
    "gemini": GEMINI,
    "vertex": VERTEX,
    "bedrock": BEDROCK,
    "mistral": MISTRAL,
    "groq": GROQ,
    "cohere": COHERE,
    "fireworks": FIREWORKS,
    "together": TOGETHER,
    "ollama": OLLAMA,
}
