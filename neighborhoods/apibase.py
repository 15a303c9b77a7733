"""Shared base of the JSON API (``/api/v1/``): authentication, errors and throttling.

Every API view of the plugin derives from :class:`ApiView` so that the host's global
``REST_FRAMEWORK`` settings cannot change the contract. Errors always look like::

    {"error": {"code": "not_found", "message": "...", "fields": {"lat": ["..."]}}}
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from rest_framework import exceptions, status
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from .ratelimit import RateLimited


class TokenAuthentication(BaseAuthentication):
    """``Authorization: Token <key>`` with a key from ``POST /api/v1/auth/token/``."""

    keyword = "Token"

    def authenticate(self, request):
        from .services import user_for_token

        header = request.META.get("HTTP_AUTHORIZATION", "")
        parts = header.split()
        if not parts or parts[0].lower() not in (self.keyword.lower(), "bearer"):
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header.")
        user = user_for_token(parts[1])
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        return (user, parts[1])

    def authenticate_header(self, request) -> str:
        return self.keyword


class TokenScheme(OpenApiAuthenticationExtension):
    target_class = "neighborhoods.apibase.TokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <key>`; get a key from `POST /api/v1/auth/token/`.",
        }


class ApiError(exceptions.APIException):
    """An error with a stable machine-readable code."""

    def __init__(self, message: str, *, code: str, status_code: int = 400, fields=None) -> None:
        self.status_code = status_code
        self.error_code = code
        self.fields = fields
        super().__init__(detail=message, code=code)


def _error(code: str, message: str, http_status: int, fields=None, headers=None) -> Response:
    body: dict = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return Response({"error": body}, status=http_status, headers=headers)


def exception_handler(exc, context) -> Response | None:
    if isinstance(exc, ApiError):
        return _error(exc.error_code, str(exc.detail), exc.status_code, exc.fields)
    if isinstance(exc, RateLimited):
        return _error(
            "rate_limited",
            str(exc),
            status.HTTP_429_TOO_MANY_REQUESTS,
            headers={"Retry-After": str(exc.retry_after)},
        )
    if isinstance(exc, Http404):
        return _error("not_found", str(exc) or "Not found.", status.HTTP_404_NOT_FOUND)
    if isinstance(exc, DjangoPermissionDenied):
        message = str(exc) or "You are not allowed to do this."
        return _error("permission_denied", message, status.HTTP_403_FORBIDDEN)
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            return _error("invalid", "Some fields are invalid.", 400, fields=exc.message_dict)
        return _error("invalid", " ".join(exc.messages), status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
        if isinstance(detail, dict):
            fields = {
                k: [str(m) for m in (v if isinstance(v, list) else [v])] for k, v in detail.items()
            }
            return _error("invalid", "Some fields are invalid.", 400, fields=fields)
        messages = detail if isinstance(detail, list) else [detail]
        return _error("invalid", " ".join(str(m) for m in messages), 400)
    if isinstance(exc, exceptions.APIException):
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else "error"
        headers = {}
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            headers["WWW-Authenticate"] = "Token"
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))
        return _error(code, str(exc.detail), exc.status_code, headers=headers)
    return None


class ApiView(APIView):
    authentication_classes = [SessionAuthentication, TokenAuthentication]
    permission_classes = [AllowAny]
    renderer_classes = [JSONRenderer]
    parser_classes = [JSONParser, FormParser, MultiPartParser]
    schema = AutoSchema()

    def get_exception_handler(self):
        return exception_handler

    def get_authenticate_header(self, request) -> str:
        # DRF takes the challenge from the first authenticator; session auth has none, which
        # would turn "not signed in" into a 403. The documented answer is 401 with a challenge.
        return TokenAuthentication.keyword


class AuthenticatedApiView(ApiView):
    permission_classes = [IsAuthenticated]


def required_param(request, name: str) -> str:
    value = request.query_params.get(name)
    if value is None or value == "":
        raise ApiError(
            f"The query parameter {name!r} is required.",
            code="missing_parameter",
            fields={name: ["This parameter is required."]},
        )
    return value


def validated(serializer_class, request, **kwargs) -> dict:
    """The request's data checked by ``serializer_class`` (a 400 with field names otherwise)."""
    serializer = serializer_class(data=request.data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def invalid(fields: dict[str, list[str]], message: str = "Some fields are invalid.") -> ApiError:
    return ApiError(message, code="invalid", fields=fields)


def query_list(request, name: str) -> list[str]:
    """``?name=a&name=b`` and ``?name=a,b`` alike, in order, without repeats."""
    values = [
        item.strip()
        for value in request.query_params.getlist(name)
        for item in value.split(",")
        if item.strip()
    ]
    return list(dict.fromkeys(values))
