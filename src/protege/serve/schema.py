"""The OpenAI wire format the gateway speaks: request models and OpenAI-shaped errors.

Unknown request fields are ignored, as OpenAI-compatible servers do, so any client works;
known fields are validated and a bad one is a 400 naming it in `param`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class APIError(Exception):
    """An HTTP error rendered as `{"error": {"message", "type", "param", "code"}}`."""

    def __init__(self, status: int, message: str, *, type: str, code: str | None = None,
                 param: str | None = None, headers: dict[str, str] | None = None):  # fmt: skip
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def bad_request(message: str, param: str | None = None, code: str = "invalid_request") -> APIError:
    return APIError(400, message, type="invalid_request_error", code=code, param=param)


def public_ref(ref: str) -> str:
    """A model reference as clients may see it: no upstream URL, no local path."""
    scheme, _, rest = ref.partition(":")
    if scheme == "openai":
        return f"openai:{rest.rpartition('@')[0] or rest}"
    if scheme == "gguf":
        return f"gguf:{rest.replace(chr(92), '/').rpartition('/')[2]}"
    return ref


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None

    @field_validator("content")
    @classmethod
    def _text_only(cls, content: Any) -> Any:
        if isinstance(content, list):
            parts = []
            for part in content:
                if part.get("type") != "text" or not isinstance(part.get("text"), str):
                    raise ValueError("only text content parts are supported")
                parts.append(part["text"])
            return "".join(parts)
        return content

    def plain(self) -> dict[str, str]:
        role = "system" if self.role == "developer" else self.role
        content = self.content or ""
        assert isinstance(content, str)  # `_text_only` joined any content parts into one text
        return {"role": role, "content": content}


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    temperature: float = Field(0.7, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int = Field(1, ge=1, le=1, description="one choice per request")
    user: str | None = None

    @field_validator("stop")
    @classmethod
    def _stop_list(cls, stop: Any) -> Any:
        if isinstance(stop, list) and len(stop) > 4:
            raise ValueError("at most 4 stop sequences")
        return stop

    @field_validator("messages")
    @classmethod
    def _has_user_turn(cls, messages: list[Message]) -> list[Message]:
        if not any(m.role == "user" and m.content for m in messages):
            raise ValueError("messages must include a user message with content")
        return messages

    def stops(self) -> list[str] | None:
        return [self.stop] if isinstance(self.stop, str) else self.stop

    def token_limit(self, cap: int) -> int:
        return min(self.max_completion_tokens or self.max_tokens or cap, cap)


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64)
    rating: int = Field(description="+1 (good) or -1 (bad)")
    comment: str | None = Field(None, max_length=4000)

    @field_validator("rating")
    @classmethod
    def _thumb(cls, rating: int) -> int:
        if rating not in (-1, 1):
            raise ValueError("rating must be 1 (thumbs up) or -1 (thumbs down)")
        return rating
