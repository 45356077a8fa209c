"""What every forge client shares: the PR/MR record, the interface, and one careful HTTP exchange.

Failures are typed so the job layer knows what to do: the network, a timeout, a 429 or a 5xx may pass
(`CIError`, retried); a refused token (`PermissionDeniedError`), a missing repository
(`NotFoundError`) or a refused request (`InvalidInputError`) will not. Messages name the call and
the forge's own explanation, never the token.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

import aiohttp
from yarl import URL

from app.domain.ci import Provider, clean_text
from app.domain.intake import Issue
from app.errors import CIError, InvalidInputError, NotFoundError, PermissionDeniedError

MAX_RESPONSE_BYTES = 8 * 1024 * 1024
ISSUE_PAGE = 100
MAX_ISSUE_PAGES = 10  # a poll reads at most 1,000 labelled issues; past that, it cancels nothing
USER_AGENT = "TasksGodzilla"


@dataclass(frozen=True)
class PullRequest:
    """A PR (GitHub) or MR (GitLab), in the few fields the service uses."""

    number: int
    url: str
    state: str  # open, closed or merged
    head_sha: str | None = None

    @property
    def merged(self) -> bool:
        return self.state == "merged"


@dataclass(frozen=True)
class MergeAnswer:
    """What a forge said to a merge request: merged, or refused with its reason (a conflict, checks the
    forge requires, a head that moved since `sha`)."""

    merged: bool
    reason: str = ""


@dataclass(frozen=True)
class FailedJob:
    """A CI job that failed on a commit: its name, a link, and the end of its log (raw, unredacted)."""

    name: str
    log_tail: str
    url: str | None = None


class Forge(Protocol):
    """A forge's PR/MR API for one repository."""

    provider: Provider

    async def find_open(self, branch: str) -> PullRequest | None:
        """The open PR/MR from `branch`, if there is one."""
        ...

    async def create(self, *, branch: str, base: str, title: str, body: str) -> PullRequest: ...

    async def update(self, number: int, *, title: str, body: str) -> PullRequest: ...

    async def comment(self, number: int, body: str) -> None: ...

    async def get(self, number: int) -> PullRequest: ...

    async def merge(self, number: int, sha: str) -> MergeAnswer:
        """Merge the PR/MR only if its head is still `sha`; a refusal is an answer, not an error."""
        ...

    async def reply(
        self, number: int, *, comment_id: int, kind: str, discussion_id: str | None, body: str
    ) -> None:
        """Answer a reviewer's comment (`kind`: review_comment, review or note) in its own thread."""
        ...

    async def failed_job(self, sha: str, tail_bytes: int) -> FailedJob | None:
        """The first failed CI job on `sha` with the last `tail_bytes` of its log; None if none."""
        ...

    async def close(self) -> None: ...

    async def comment_issue(self, number: int, body: str) -> None:
        """A comment on the issue `number` (GitHub's issue comment, GitLab's issue note)."""
        ...

    async def labelled_issues(self, label: str) -> tuple[list[Issue], bool]:
        """The open issues carrying `label`, and whether that is all of them (pages are capped)."""
        ...


class RestClient:
    """JSON over HTTPS with one session, the forge's auth header, and typed failures."""

    def __init__(self, base_url: str, headers: dict[str, str], *, timeout: float) -> None:
        self._base = base_url.rstrip("/")
        self._session = aiohttp.ClientSession(
            headers={"User-Agent": USER_AGENT, "Accept": "application/json", **headers},
            timeout=aiohttp.ClientTimeout(total=timeout),
            raise_for_status=False,
        )

    async def close(self) -> None:
        await self._session.close()

    async def __aenter__(self) -> RestClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def call(
        self, method: str, path: str, *, query: dict[str, str] | None = None, body: Any = None
    ) -> Any:
        """One request; the decoded JSON answer, or a typed error."""
        status, raw = await self._send(method, path, query=query, body=body)
        return _answer(f"{method} {path}", status, raw)

    async def issue_pages(
        self,
        path: str,
        query: dict[str, str],
        parse: Callable[[Any], Issue | None],
        *,
        forge: str,
        repository: str,
    ) -> tuple[list[Issue], bool]:
        """Every issue of a paged list (`parse`: None for an entry that is no issue), each naming
        `repository`, and whether the list was read to its end (at most MAX_ISSUE_PAGES pages)."""
        found: list[Issue] = []
        for page in range(1, MAX_ISSUE_PAGES + 1):
            paged = {**query, "per_page": str(ISSUE_PAGE), "page": str(page)}
            entries = await self.call("GET", path, query=paged)
            if not isinstance(entries, list):
                raise CIError(f"GET issues: {forge} answered something other than a list")
            issues = (parse(entry) for entry in entries)
            found += [i.model_copy(update={"repository": repository}) for i in issues if i is not None]
            if len(entries) < ISSUE_PAGE:
                return found, True
        return found, False

    async def refusable(self, method: str, path: str, *, body: Any, refusals: frozenset[int]) -> MergeAnswer:
        """A merge request: merged when the forge accepts it; a status in `refusals` is the forge's
        refusal, with its explanation (another try would get the same); anything else a typed error."""
        status, raw = await self._send(method, path, body=body)
        if status in refusals:
            payload = _json(raw)
            explanation = _explanation(payload) or "no reason given"
            return MergeAnswer(merged=False, reason=f"HTTP {status}: {explanation}")
        payload = _answer(f"{method} {path}", status, raw)
        if isinstance(payload, dict) and payload.get("merged") is False:  # GitHub's 200 without a merge
            return MergeAnswer(merged=False, reason=_explanation(payload) or "not merged")
        return MergeAnswer(merged=True)

    async def text_tail(
        self, url: str, tail_bytes: int, *, authenticated: bool = True
    ) -> tuple[int, str, str]:
        """GET a text document (a CI log): its status, its redirect target (for a 3xx) and its last
        `tail_bytes`, streamed (a log of any size is read once, never held whole). A redirect is not
        followed: the caller fetches its target with `authenticated=False`, from a bare session, so
        the forge's token never goes to the storage host a log lives on."""
        absolute = url.startswith(("http://", "https://"))
        target = URL(url if absolute else self._base + url, encoded=True)
        bare = None if authenticated else aiohttp.ClientSession(timeout=self._session.timeout)
        session = self._session if bare is None else bare
        kept = b""
        try:
            async with session.get(target, allow_redirects=False) as response:
                async for chunk in response.content.iter_chunked(64 * 1024):
                    kept = (kept + chunk)[-tail_bytes:]
                status, location = response.status, response.headers.get("Location", "")
        except TimeoutError:
            raise CIError(f"GET {target.path}: the forge did not answer in time") from None
        except aiohttp.ClientError as exc:
            raise CIError(f"GET {target.path}: {type(exc).__name__}") from None
        finally:
            if bare is not None:
                await bare.close()
        return status, location, kept.decode("utf-8", "replace")

    async def _send(
        self, method: str, path: str, *, query: dict[str, str] | None = None, body: Any = None
    ) -> tuple[int, bytes]:
        # `path` comes pre-encoded (a GitLab project id is `group%2Fname`): yarl must not re-encode it.
        url = URL(self._base + path, encoded=True)
        if query:
            url = url.update_query(query)
        what = f"{method} {path}"
        try:
            async with self._session.request(method, url, json=body, allow_redirects=False) as response:
                raw = await response.content.read(MAX_RESPONSE_BYTES + 1)
                status = response.status
        except TimeoutError:
            raise CIError(f"{what}: the forge did not answer in time") from None
        except aiohttp.ClientError as exc:
            raise CIError(f"{what}: {type(exc).__name__}") from None
        if len(raw) > MAX_RESPONSE_BYTES:
            raise CIError(f"{what}: the answer is larger than {MAX_RESPONSE_BYTES} bytes")
        return status, raw


def _answer(what: str, status: int, raw: bytes) -> Any:
    payload = _json(raw)
    if status < 300:
        if payload is None and raw.strip():
            raise CIError(f"{what}: the forge answered something other than JSON")
        return payload
    raise _failure(what, status, payload)


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw.strip() else None
    except ValueError:
        return None


def _explanation(payload: Any) -> str:
    """The forge's own words: `message` (GitHub; GitLab, sometimes a list) or `error`, made safe."""
    if not isinstance(payload, dict):
        return ""
    said = payload.get("message") or payload.get("error") or ""
    if isinstance(said, list):
        said = "; ".join(str(part) for part in said)
    return clean_text(str(said), 300)


def _failure(what: str, status: int, payload: Any) -> Exception:
    explanation = _explanation(payload)
    message = f"{what}: HTTP {status}" + (f" ({explanation})" if explanation else "")
    if status in (401, 403) and "rate limit" not in explanation.lower():
        return PermissionDeniedError(message + ": check the forge token and its scopes", status=status)
    if status == 404:
        return NotFoundError(message + ": no such repository, or the token cannot see it", status=status)
    if status in (408, 409, 429) or status >= 500 or status == 403:
        return CIError(message, status=status)
    return InvalidInputError(message, status=status)
