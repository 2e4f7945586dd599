"""OpenID Connect sign-in: provider configuration, discovery, PKCE, token exchange, ID-token checks, user mapping.

An agency with an identity provider (IdP) may let its people sign in there instead of with a sharewise password.
The IdP only proves who someone is: they must be a registered sharewise user of the agency the provider serves,
and their roles come from sharewise's own directory (the workflow), never from the IdP. A user whose roles need a
second factor is let in only when the ID token says the IdP used one (`amr` or `acr`, configured per provider).

The flow is the authorization code flow with PKCE (S256); `state`, `nonce` and the PKCE verifier are kept by the
caller (the web session) between `begin` and `complete`, and are used once. Tokens are checked here and then
dropped: they are never stored, logged or audited.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote_plus, urlsplit

import httpx
import jwt
import yaml
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import Connection

from sharewise.domain.errors import (
    AccessDeniedError,
    IntegrityError,
    InvalidDataError,
    InvalidStateError,
    NotFoundError,
    Problem,
)
from sharewise.domain.events import AuditEvent
from sharewise.security.keys import _check_private
from sharewise.services import accounts as accounts_service
from sharewise.wiring import Control
from sharewise.workflow.access import User
from sharewise.workflow.store import SqlWorkflowStore

CONFIG_ENV = "SHAREWISE_OIDC_CONFIG"
ALGORITHMS = ("RS256", "ES256")  # asymmetric only: "none" and shared-secret (HS*) tokens are refused
LEEWAY = dt.timedelta(seconds=60)  # clock skew allowed between sharewise and the IdP
PENDING_LIFETIME = dt.timedelta(minutes=10)  # a sign-in begun must come back within this
DISCOVERY_TTL = 3600.0  # seconds a provider's discovery document is kept
JWKS_TTL = 3600.0  # seconds its signing keys are kept
JWKS_REFETCH_AFTER = 60.0  # an unknown key id refetches the keys (rotation), at most once a minute
HTTP_TIMEOUT = 10.0
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})  # the only hosts allowed over plain http

USERS = SqlWorkflowStore()
log = logging.getLogger(__name__)


# Configuration -----------------------------------------------------------------------------------


def _url_problem(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "an absolute https:// URL"
    if parts.scheme == "http" and parts.hostname not in LOCAL_HOSTS:
        return "an https:// URL (plain http only for localhost)"
    if parts.query or parts.fragment:
        return "a URL without a query or fragment"
    return None


class ProviderConfig(BaseModel):
    """One identity provider, as the configuration file lists it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")  # in the sign-in URL
    name: str = Field(min_length=1, max_length=80)  # on the sign-in button
    issuer: str = Field(max_length=500)
    client_id: str = Field(min_length=1, max_length=255)
    client_secret_file: Path  # mode 600; relative to the configuration file
    agency: str = Field(min_length=1, max_length=40)
    user_claim: str = Field(default="preferred_username", pattern=r"^[A-Za-z_][A-Za-z0-9_:.-]{0,99}$")
    user_domain: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
    scopes: str = "openid email profile"
    token_endpoint_auth: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic"
    privileged: Literal["require_mfa", "refuse"] = "require_mfa"
    mfa_amr: tuple[str, ...] = ("mfa", "otp")
    mfa_acr: tuple[str, ...] = ()

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, value: str) -> str:
        problem = _url_problem(value)
        if problem:
            raise ValueError(f"the issuer must be {problem}")
        return value

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, value: str) -> str:
        scopes = value.split()
        if "openid" not in scopes:
            raise ValueError("the scopes must include openid")
        if any(not re.fullmatch(r"[\x21\x23-\x5b\x5d-\x7e]+", s) for s in scopes):
            raise ValueError("scopes are words separated by spaces")
        return " ".join(scopes)


class OidcConfig(BaseModel):
    """The configuration file: where sharewise is reached from outside, and the providers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    public_url: str | None = None  # the base of the redirect URIs registered with the providers
    providers: list[ProviderConfig] = Field(min_length=1)

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        problem = _url_problem(value)
        if problem:
            raise ValueError(f"the public URL must be {problem}")
        return value.rstrip("/")

    @field_validator("providers")
    @classmethod
    def _unique(cls, value: list[ProviderConfig]) -> list[ProviderConfig]:
        ids = [p.id for p in value]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"provider ids must be unique; repeated: {', '.join(repeated)}")
        return value


@dataclass(frozen=True)
class Provider:
    """A configured provider with its client secret (read from its file; never printed)."""

    config: ProviderConfig
    client_secret: str = field(repr=False)


@dataclass(frozen=True)
class OidcSettings:
    """A loaded, checked configuration."""

    providers: tuple[Provider, ...]
    public_url: str | None = None


INLINE_SECRET = (
    "a client secret is never written in the configuration: put it alone in a file readable only by "
    "sharewise (chmod 600) and name that file with client_secret_file"
)


def _pydantic_problems(path: Path, exc: ValidationError) -> list[Problem]:
    problems = []
    for e in exc.errors(include_input=False):
        where = ".".join(str(p) for p in e["loc"])
        if e["type"] == "extra_forbidden":
            key = str(e["loc"][-1]) if e["loc"] else ""
            if key == "client_secret":
                message = INLINE_SECRET
            else:
                model = ProviderConfig if len(e["loc"]) > 1 else OidcConfig
                message = f"unknown key; the keys are {', '.join(model.model_fields)}"
        elif e["type"] == "missing":
            message = "required"
        else:
            message = e["msg"].removeprefix("Value error, ")
        problems.append(Problem(f"{path}: {where}", message))
    return problems


def _read_secret(path: Path, secret_file: Path, where: str) -> tuple[str | None, Problem | None]:
    location = f"{path}: {where}"
    if not secret_file.is_file():
        return None, Problem(location, f"no file {secret_file}")
    try:
        _check_private(secret_file)
    except IntegrityError as exc:
        return None, Problem(location, exc.message)
    try:
        text = secret_file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        return None, Problem(location, f"cannot read {secret_file}: {exc}")
    if not text or "\n" in text:
        return None, Problem(location, f"{secret_file} must hold the client secret alone, on one line")
    return text, None


def load_config(path: Path) -> OidcSettings:
    """Read and check a configuration file; every problem is reported together, with the file and field."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidDataError(
            f"cannot read the OpenID Connect configuration {path}: {exc.strerror}",
            [Problem(CONFIG_ENV, "name a readable YAML file, or unset it to turn OpenID Connect off")],
        ) from exc
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: not UTF-8, or a value such as 2026-02-30
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        reason = str(getattr(exc, "problem", None) or "not UTF-8 text, or a value that cannot be read")
        raise InvalidDataError("the OpenID Connect configuration is not valid YAML", [Problem(where, reason)]) from exc
    if not isinstance(raw, dict):
        raise InvalidDataError(
            "invalid OpenID Connect configuration", [Problem(str(path), "a mapping with a list of providers")]
        )
    try:
        config = OidcConfig.model_validate(raw)
    except ValidationError as exc:
        raise InvalidDataError("invalid OpenID Connect configuration", _pydantic_problems(path, exc)) from None
    providers, problems = [], []
    for index, provider in enumerate(config.providers):
        secret_file = provider.client_secret_file
        if not secret_file.is_absolute():
            secret_file = path.parent / secret_file
        secret, problem = _read_secret(path, secret_file, f"providers.{index}.client_secret_file")
        if problem is not None:
            problems.append(problem)
        elif secret is not None:
            providers.append(Provider(provider, secret))
    if problems:
        raise InvalidDataError("invalid OpenID Connect configuration", problems)
    return OidcSettings(tuple(providers), config.public_url)


def settings_from_env() -> OidcSettings | None:
    """The configuration SHAREWISE_OIDC_CONFIG names, or None when it is unset (OpenID Connect is off)."""
    configured = os.environ.get(CONFIG_ENV)
    return load_config(Path(configured)) if configured else None


# Refusals ----------------------------------------------------------------------------------------


class SignInRefused(AccessDeniedError):
    """An identity-provider sign-in did not let the person in; `reason` is the stable code audited."""

    def __init__(self, reason: str, message: str, status: int = 401, user: User | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status
        self.user = user  # the registered user the IdP named, once known (for the audit record)


# Reasons whose person was identified by the IdP but may not come in this way (403, not 401).
NOT_ALLOWED = frozenset(
    {"unknown-user", "user-outside-domain", "other-agency", "mfa-required", "privileged-refused", "enrolment-required"}
)


def _refused(reason: str, provider: ProviderConfig | None = None, user: User | None = None) -> SignInRefused:
    name = provider.name if provider else "the identity provider"
    messages = {
        "state": "sign-in failed: this sign-in attempt has expired or was already used; start again",
        "provider-error": f"sign-in failed: {name} did not sign you in; start again",
        "provider-unreachable": f"sign-in failed: {name} could not be reached or answered wrongly; try again later",
        "token-exchange-failed": f"sign-in failed: {name} did not complete the sign-in; start again",
        "invalid-id-token": (
            f"sign-in failed: the answer from {name} could not be verified; start again, and tell your "
            "administrator if it keeps failing"
        ),
        "unknown-user": (
            f"sign-in refused: the account you used at {name} is not registered in sharewise for its agency; "
            "ask your agency's sharewise administrator to add you"
        ),
        "other-agency": (
            f"sign-in refused: your sharewise user belongs to another agency than the one {name} signs in for; "
            "use your own agency's sign-in"
        ),
        "mfa-required": (
            f"sign-in refused: your roles need a second factor and {name} did not report one; sign in there with "
            "multi-factor authentication, or here with your password and one-time code"
        ),
        "privileged-refused": (
            f"sign-in refused: your roles need sharewise's own one-time code, so {name} cannot sign you in; "
            "sign in with your password and one-time code"
        ),
        "enrolment-required": accounts_service.ENROLMENT_REQUIRED,
        "email-not-verified": f"sign-in refused: {name} has not verified your e-mail address",
    }
    family = _FAMILY.get(reason, reason)
    status = 403 if family in NOT_ALLOWED else 502 if family == "provider-unreachable" else 401
    return SignInRefused(reason, messages[family], status, user)


# Fine-grained reasons (audited) and the message family each is shown with.
_FAMILY = {
    "state-missing": "state",
    "state-mismatch": "state",
    "authorization-expired": "state",
    "issuer-mismatch": "invalid-id-token",
    "malformed-id-token": "invalid-id-token",
    "unsupported-algorithm": "invalid-id-token",
    "unknown-key": "invalid-id-token",
    "bad-signature": "invalid-id-token",
    "wrong-issuer": "invalid-id-token",
    "wrong-audience": "invalid-id-token",
    "wrong-authorized-party": "invalid-id-token",
    "missing-claim": "invalid-id-token",
    "expired-token": "invalid-id-token",
    "issued-in-future": "invalid-id-token",
    "not-yet-valid": "invalid-id-token",
    "nonce-mismatch": "invalid-id-token",
    "at-hash-mismatch": "invalid-id-token",
    "no-user-claim": "unknown-user",
    "user-outside-domain": "unknown-user",
}


# Protocol ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Discovery:
    """What sharewise uses of a provider's discovery document."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


@dataclass(frozen=True)
class Authorization:
    """A sign-in begun: where to send the browser, and what the session keeps until the callback."""

    url: str
    pending: dict[str, str]


def pkce_challenge(verifier: str) -> str:
    """The S256 code challenge of a PKCE verifier (RFC 7636 4.2)."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode("ascii")


def _left_half_hash(value: str) -> str:
    # at_hash for RS256 and ES256 (OpenID Connect Core 3.1.3.6): SHA-256, left half, base64url.
    digest = hashlib.sha256(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class OpenIdConnect:
    """Sign-in through the configured providers: one per app, caching discovery documents and signing keys.

    `http` is the client for the providers' endpoints; tests pass one with a mock transport.
    """

    def __init__(self, settings: OidcSettings, http: httpx.Client | None = None) -> None:
        self.settings = settings
        self.http = http or httpx.Client(timeout=HTTP_TIMEOUT, follow_redirects=False)
        self._providers = {p.config.id: p for p in settings.providers}
        self._lock = threading.Lock()
        self._discovery: dict[str, tuple[float, Discovery]] = {}
        self._jwks: dict[str, tuple[float, list[jwt.PyJWK]]] = {}

    def providers(self) -> list[ProviderConfig]:
        """The providers, in the configuration's order (for the sign-in page)."""
        return [p.config for p in self.settings.providers]

    def provider(self, provider_id: str) -> Provider:
        found = self._providers.get(provider_id)
        if found is None:
            raise NotFoundError(f"no identity provider '{provider_id}' is configured")
        return found

    # Discovery and keys

    def _get_json(self, url: str, provider: ProviderConfig, what: str) -> dict[str, Any]:
        try:
            response = self.http.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            log.warning("OpenID Connect provider %s: cannot fetch its %s (%s)", provider.id, what, type(exc).__name__)
            raise _refused("provider-unreachable", provider) from None
        if response.status_code != 200:
            log.warning("OpenID Connect provider %s: its %s answered HTTP %d", provider.id, what, response.status_code)
            raise _refused("provider-unreachable", provider)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            log.warning("OpenID Connect provider %s: its %s is not a JSON object", provider.id, what)
            raise _refused("provider-unreachable", provider)
        return body

    def discovery(self, provider: ProviderConfig) -> Discovery:
        """The provider's endpoints, from {issuer}/.well-known/openid-configuration (cached)."""
        now = time.monotonic()
        cached = self._discovery.get(provider.id)
        if cached is not None and now - cached[0] < DISCOVERY_TTL:
            return cached[1]
        doc = self._get_json(
            provider.issuer.rstrip("/") + "/.well-known/openid-configuration", provider, "discovery document"
        )
        problems = []
        if doc.get("issuer") != provider.issuer:
            problems.append("its issuer is not the configured issuer")
        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            value = doc.get(key)
            if not isinstance(value, str) or _url_problem(value.split("?", 1)[0]) is not None:
                problems.append(f"{key} is missing or not an https URL")
        methods = doc.get("code_challenge_methods_supported")
        if isinstance(methods, list) and "S256" not in methods:
            problems.append("it does not support PKCE with S256")
        if problems:
            log.warning("OpenID Connect provider %s: unusable discovery document: %s", provider.id, "; ".join(problems))
            raise _refused("provider-unreachable", provider)
        found = Discovery(doc["issuer"], doc["authorization_endpoint"], doc["token_endpoint"], doc["jwks_uri"])
        with self._lock:
            self._discovery[provider.id] = (now, found)
        return found

    def _keys(self, provider: ProviderConfig, jwks_uri: str, refresh: bool) -> list[jwt.PyJWK]:
        now = time.monotonic()
        cached = self._jwks.get(jwks_uri)
        stale = cached is None or now - cached[0] >= JWKS_TTL or (refresh and now - cached[0] > JWKS_REFETCH_AFTER)
        if cached is not None and not stale:
            return cached[1]
        doc = self._get_json(jwks_uri, provider, "signing keys")
        keys = []
        for item in doc.get("keys", []) if isinstance(doc.get("keys"), list) else []:
            if not isinstance(item, dict) or item.get("use", "sig") != "sig":
                continue
            try:
                keys.append(jwt.PyJWK(item))
            except jwt.PyJWTError:
                continue  # a key of a kind sharewise does not use
        with self._lock:
            self._jwks[jwks_uri] = (now, keys)
        return keys

    def _signing_key(self, provider: ProviderConfig, jwks_uri: str, kid: Any, alg: str) -> Any:
        for refresh in (False, True):
            keys = [k for k in self._keys(provider, jwks_uri, refresh) if _fits(k, alg)]
            if isinstance(kid, str):
                keys = [k for k in keys if k.key_id == kid]
            if len(keys) == 1:
                return keys[0].key
            if len(keys) > 1:
                break  # no kid and several keys of the kind: which one signed is unknown
        raise _refused("unknown-key", provider)

    # The flow

    def begin(self, control: Control, provider_id: str, redirect_uri: str, next_url: str) -> Authorization:
        """Where to send the browser to sign in at the provider, and the one-time values the session keeps."""
        provider = self.provider(provider_id).config
        with control.store.transaction() as conn:
            if not USERS.agency_exists(conn, provider.agency):
                raise InvalidStateError(
                    f"identity provider '{provider.id}' is configured for agency '{provider.agency}', "
                    "which is not registered; correct the configuration"
                )
        endpoints = self.discovery(provider)
        verifier = secrets.token_urlsafe(48)
        pending = {
            "provider": provider.id,
            "state": secrets.token_urlsafe(32),
            "nonce": secrets.token_urlsafe(32),
            "verifier": verifier,
            "redirect_uri": redirect_uri,
            "next": next_url,
            "started": control.trail.clock().isoformat(),
        }
        url = httpx.URL(endpoints.authorization_endpoint).copy_merge_params(
            {
                "response_type": "code",
                "client_id": provider.client_id,
                "redirect_uri": redirect_uri,
                "scope": provider.scopes,
                "state": pending["state"],
                "nonce": pending["nonce"],
                "code_challenge": pkce_challenge(verifier),
                "code_challenge_method": "S256",
            }
        )
        return Authorization(str(url), pending)

    def complete(
        self, control: Control, provider_id: str, pending: Mapping[str, Any] | None, params: Mapping[str, str]
    ) -> User:
        """The sharewise user the provider's answer signs in; audited as `signed-in` or `sign-in-failed`.

        `pending` is what `begin` gave (the caller removes it from the session first: it is good once);
        `params` are the callback's query parameters. Refusals raise SignInRefused with a reason code.
        """
        provider = self.provider(provider_id)
        try:
            user, mfa = self._complete(control, provider, pending, params)
        except SignInRefused as exc:
            _audit_failure(control, provider.config, exc.reason, exc.user)
            raise
        _audit(
            control,
            AuditEvent(
                action="signed-in",
                actor=user.id,
                agency=user.agency_id,
                subject_type="account",
                subject_id=user.id,
                details={"method": "oidc", "provider": provider.config.id, "idp_mfa": mfa},
            ),
        )
        return user

    def _complete(
        self, control: Control, provider: Provider, pending: Mapping[str, Any] | None, params: Mapping[str, str]
    ) -> tuple[User, bool]:
        config = provider.config
        if not pending or pending.get("provider") != config.id:
            raise _refused("state-missing", config)
        if not secrets.compare_digest(str(params.get("state", "")), str(pending.get("state", ""))):
            raise _refused("state-mismatch", config)
        now = control.trail.clock()
        try:
            started = dt.datetime.fromisoformat(str(pending.get("started")))
        except ValueError:
            raise _refused("state-missing", config) from None
        if not dt.timedelta(0) - LEEWAY <= now - started <= PENDING_LIFETIME:
            raise _refused("authorization-expired", config)
        endpoints = self.discovery(config)
        if "iss" in params and params["iss"] != endpoints.issuer:
            raise _refused("issuer-mismatch", config)  # RFC 9207: an answer meant for another provider
        if "error" in params or not params.get("code"):
            code = params.get("error", "")
            log.info(
                "OpenID Connect provider %s answered without a code (%s)",
                config.id,
                code if re.fullmatch(r"[a-z_]{1,40}", code) else "no error code",
            )
            raise _refused("provider-error", config)
        tokens = self._exchange(provider, endpoints, str(params["code"]), pending)
        claims = self._verify_id_token(config, endpoints, tokens, str(pending.get("nonce", "")), now)
        return self._user(control, config, claims)

    def _exchange(
        self, provider: Provider, endpoints: Discovery, code: str, pending: Mapping[str, Any]
    ) -> dict[str, Any]:
        config = provider.config
        form = {
            "grant_type": "authorization_code",
            "code": code[:4096],
            "redirect_uri": str(pending.get("redirect_uri", "")),
            "code_verifier": str(pending.get("verifier", "")),
        }
        headers = {"Accept": "application/json"}
        if config.token_endpoint_auth == "client_secret_post":
            form |= {"client_id": config.client_id, "client_secret": provider.client_secret}
        else:
            # RFC 6749 2.3.1: each part form-urlencoded before Basic encoding.
            pair = f"{quote_plus(config.client_id)}:{quote_plus(provider.client_secret)}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        try:
            response = self.http.post(endpoints.token_endpoint, data=form, headers=headers)
        except httpx.HTTPError as exc:
            log.warning("OpenID Connect provider %s: token endpoint unreachable (%s)", config.id, type(exc).__name__)
            raise _refused("provider-unreachable", config) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200 or not isinstance(body, dict):
            error = body.get("error") if isinstance(body, dict) else None
            log.warning(
                "OpenID Connect provider %s: the token endpoint answered HTTP %d (%s)",
                config.id,
                response.status_code,
                error if isinstance(error, str) and re.fullmatch(r"[a-z_]{1,40}", error) else "no error code",
            )
            raise _refused("token-exchange-failed", config)
        if not isinstance(body.get("id_token"), str) or str(body.get("token_type", "")).lower() != "bearer":
            log.warning("OpenID Connect provider %s: the token response has no ID token", config.id)
            raise _refused("token-exchange-failed", config)
        return body

    def _verify_id_token(
        self, config: ProviderConfig, endpoints: Discovery, tokens: Mapping[str, Any], nonce: str, now: dt.datetime
    ) -> dict[str, Any]:
        token = str(tokens["id_token"])
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _refused("malformed-id-token", config) from None
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise _refused("unsupported-algorithm", config)
        key = self._signing_key(config, endpoints.jwks_uri, header.get("kid"), alg)
        try:
            # Times are checked below against sharewise's clock, not the system's.
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=config.client_id,
                issuer=endpoints.issuer,
                options={
                    "require": ["iss", "sub", "aud", "exp", "iat"],
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "enforce_minimum_key_length": True,
                },
            )
        except jwt.InvalidSignatureError:
            raise _refused("bad-signature", config) from None
        except jwt.InvalidAudienceError:
            raise _refused("wrong-audience", config) from None
        except jwt.InvalidIssuerError:
            raise _refused("wrong-issuer", config) from None
        except jwt.MissingRequiredClaimError:
            raise _refused("missing-claim", config) from None
        except jwt.InvalidAlgorithmError:
            raise _refused("unsupported-algorithm", config) from None
        except jwt.PyJWTError:
            raise _refused("malformed-id-token", config) from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if (len(audiences) > 1 or "azp" in claims) and claims.get("azp") != config.client_id:
            raise _refused("wrong-authorized-party", config)
        stamp, skew = now.timestamp(), LEEWAY.total_seconds()
        exp, iat, nbf = _number(claims.get("exp")), _number(claims.get("iat")), _number(claims.get("nbf"))
        if exp is None or iat is None or ("nbf" in claims and nbf is None):
            raise _refused("missing-claim", config)
        if exp <= stamp - skew:
            raise _refused("expired-token", config)
        if iat > stamp + skew:
            raise _refused("issued-in-future", config)
        if nbf is not None and nbf > stamp + skew:
            raise _refused("not-yet-valid", config)
        if not nonce or not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
            raise _refused("nonce-mismatch", config)
        access_token = tokens.get("access_token")
        if (
            "at_hash" in claims
            and isinstance(access_token, str)
            and not secrets.compare_digest(str(claims["at_hash"]), _left_half_hash(access_token))
        ):
            raise _refused("at-hash-mismatch", config)
        return claims

    def _user(self, control: Control, config: ProviderConfig, claims: Mapping[str, Any]) -> tuple[User, bool]:
        value = claims.get(config.user_claim)
        if not isinstance(value, str) or not value.strip():
            raise _refused("no-user-claim", config)
        if config.user_claim == "email" and claims.get("email_verified") is False:
            raise _refused("email-not-verified", config)
        user_id = value.strip()
        if config.user_domain is not None:
            local, at, domain = user_id.rpartition("@")
            if not at or not local or domain.lower() != config.user_domain.lower():
                raise _refused("user-outside-domain", config)
            user_id = local
        with control.store.transaction() as conn:
            user = _directory_user(conn, user_id)
        if user is None:
            raise _refused("unknown-user", config)
        if user.agency_id != config.agency:
            raise _refused("other-agency", config, user)
        mfa = _idp_mfa(config, claims)
        if accounts_service.privileged(user):
            if config.privileged == "refuse":
                raise _refused("privileged-refused", config, user)
            if not mfa:
                raise _refused("mfa-required", config, user)
        try:
            accounts_service.user(control, user.id)  # what every page checks: the session must be usable
        except AccessDeniedError:
            raise _refused("enrolment-required", config, user) from None
        return user, mfa


def _fits(key: jwt.PyJWK, alg: str) -> bool:
    # The key's own type must match the token's algorithm (no key is used for another algorithm).
    if alg == "RS256":
        return isinstance(key.key, rsa.RSAPublicKey)
    return isinstance(key.key, ec.EllipticCurvePublicKey) and isinstance(key.key.curve, ec.SECP256R1)


def _idp_mfa(config: ProviderConfig, claims: Mapping[str, Any]) -> bool:
    """Whether the ID token says the IdP used a second factor, by the provider's configured amr or acr values."""
    amr = claims.get("amr")
    methods = {m for m in amr if isinstance(m, str)} if isinstance(amr, list) else set()
    acr = claims.get("acr")
    return bool(methods & set(config.mfa_amr)) or (isinstance(acr, str) and acr in config.mfa_acr)


def _directory_user(conn: Connection, user_id: str) -> User | None:
    if len(user_id) > 80:
        return None
    try:
        return USERS.user(conn, user_id)
    except NotFoundError:
        return None


# Audit -------------------------------------------------------------------------------------------


def _audit(control: Control, event: AuditEvent) -> None:
    with control.store.transaction() as conn:
        control.trail.append(conn, event)


def _audit_failure(control: Control, provider: ProviderConfig, reason: str, user: User | None) -> None:
    # The reason code and the provider; the user id once the IdP's answer named a registered user, never the
    # token or any other claim (an unknown user's claim may be an e-mail address: personal data).
    _audit(
        control,
        AuditEvent(
            action="sign-in-failed",
            actor="anonymous",
            agency=user.agency_id if user else provider.agency,
            subject_type="account",
            subject_id=user.id if user else "unknown",
            outcome="failure",
            details={"method": "oidc", "provider": provider.id, "reason": reason},
        ),
    )
