"""Webhook authenticity: GitHub's HMAC signature over the raw body, GitLab's shared token."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from app.errors import AuthenticationError, spec_for
from app.forges.signatures import github_signature, verify_github_signature, verify_gitlab_token

# From GitHub's documentation ("Validating webhook deliveries"), verbatim.
DOC_SECRET = "It's a Secret to Everybody"
DOC_BODY = b"Hello, World!"
DOC_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

BODY = json.dumps({"action": "completed", "check_suite": {"conclusion": "success"}}, indent=2).encode()


def test_the_documented_test_vector_verifies():
    assert github_signature(DOC_SECRET, DOC_BODY) == DOC_SIGNATURE
    verify_github_signature([DOC_SECRET], DOC_BODY, DOC_SIGNATURE)


def test_any_configured_secret_may_have_signed():
    verify_github_signature(["another-secret", DOC_SECRET], DOC_BODY, DOC_SIGNATURE)


def _sha1(secret: str, body: bytes) -> str:
    return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


@pytest.mark.parametrize(
    ("header", "body"),
    [
        pytest.param(None, BODY, id="missing"),
        pytest.param("", BODY, id="empty"),
        pytest.param(_sha1("s3cret", BODY), BODY, id="sha1-only"),
        pytest.param(github_signature("s3cret", BODY)[:-2], BODY, id="truncated"),
        pytest.param(github_signature("s3cret", BODY) + "00", BODY, id="too-long"),
        pytest.param(github_signature("s3cret", BODY).upper(), BODY, id="upper-case"),
        pytest.param(github_signature("s3cret", BODY).removeprefix("sha256="), BODY, id="no-prefix"),
        pytest.param(" " + github_signature("s3cret", BODY), BODY, id="padded"),
        pytest.param(github_signature("wrong", BODY), BODY, id="other-secret"),
        # The same JSON, re-serialised (as a framework parsing and dumping it would): other bytes.
        pytest.param(
            github_signature("s3cret", BODY), json.dumps(json.loads(BODY)).encode(), id="re-serialised"
        ),
        pytest.param(github_signature("s3cret", BODY), BODY + b"\n", id="one-byte-more"),
    ],
)
def test_bad_signatures_are_refused(header, body):
    with pytest.raises(AuthenticationError) as raised:
        verify_github_signature(["s3cret"], body, header)
    assert spec_for(raised.value).http_status == 401
    assert "s3cret" not in raised.value.message


def test_the_right_signature_of_these_bytes_passes():
    verify_github_signature(["s3cret"], BODY, github_signature("s3cret", BODY))


def test_no_secret_means_nothing_verifies():
    with pytest.raises(AuthenticationError):
        verify_github_signature([], DOC_BODY, DOC_SIGNATURE)
    with pytest.raises(AuthenticationError):
        verify_gitlab_token([], "anything")


def test_gitlab_tokens():
    verify_gitlab_token(["gl-hook-token", "other"], "other")
    for offered in (None, "", "gl-hook-toke", "gl-hook-token ", "x" * 5000, "gl-hook-tokén"):
        with pytest.raises(AuthenticationError):
            verify_gitlab_token(["gl-hook-token"], offered)
