#!/bin/sh
# Report the CI result of the current commit to TasksGodzilla, from any CI.
#
#   scripts/ci/report.sh success|failure [description]
#
# It posts what the service's webhooks understand: in GitHub mode a commit status ("status" event),
# signed with HMAC-SHA256 like GitHub signs its deliveries; in GitLab mode a "Pipeline Hook" with the
# token in X-Gitlab-Token. The service applies it to the protocol step whose commit this is.
#
# Required:
#   TASKSGODZILLA_API_BASE       the service's base URL, e.g. https://tasksgodzilla.example.com
#   TASKSGODZILLA_WEBHOOK_TOKEN  the secret the service knows as TASKSGODZILLA_WEBHOOK_TOKEN
# Read from the CI's own variables, unless set:
#   TASKSGODZILLA_CI_PROVIDER    github | gitlab        (default: gitlab under GitLab CI, else github)
#   TASKSGODZILLA_CI_SHA         the tested commit      (GITHUB_SHA, CI_COMMIT_SHA)
#   TASKSGODZILLA_CI_BRANCH      its branch             (GITHUB_HEAD_REF or GITHUB_REF_NAME, CI_COMMIT_REF_NAME)
#   TASKSGODZILLA_CI_REPOSITORY  owner/name on the forge (GITHUB_REPOSITORY, CI_PROJECT_PATH)
#   TASKSGODZILLA_CI_URL         a link to this CI run  (the Actions run, CI_PIPELINE_URL)
#   TASKSGODZILLA_CI_NAME        what is reporting      (default: ci/report.sh)
#
# Needs sh, curl, od and (GitHub mode) openssl. The token never appears on a command line: the GitLab
# header is read by curl from a private file; in GitHub mode openssl gets it on its command line,
# visible to the CI job's own processes only.
# Exit status: 0 accepted, 1 refused or unreachable, 2 wrong usage.

set -eu

fail() { echo "report.sh: $*" >&2; exit 2; }

matches() { printf '%s' "$1" | grep -Eq "$2"; }

# Text for a JSON string: quotes, backslashes and control characters dropped, at most 300 characters.
plain() { printf '%s' "$1" | tr -d '"\\' | tr -d '\000-\037\177' | cut -c1-300; }

result=${1:-}
case "$result" in
  success) github_state=success; gitlab_status=success ;;
  failure) github_state=failure; gitlab_status=failed ;;
  *) fail "usage: report.sh success|failure [description]" ;;
esac
description=$(plain "${2:-CI reported $result}")

base=${TASKSGODZILLA_API_BASE:-}
token=${TASKSGODZILLA_WEBHOOK_TOKEN:-}
[ -n "$base" ] || fail "TASKSGODZILLA_API_BASE is not set"
[ -n "$token" ] || fail "TASKSGODZILLA_WEBHOOK_TOKEN is not set"

if [ -n "${TASKSGODZILLA_CI_PROVIDER:-}" ]; then
  provider=$TASKSGODZILLA_CI_PROVIDER
elif [ -n "${GITLAB_CI:-}" ]; then
  provider=gitlab
else
  provider=github
fi
case "$provider" in github|gitlab) ;; *) fail "TASKSGODZILLA_CI_PROVIDER must be github or gitlab" ;; esac

sha=${TASKSGODZILLA_CI_SHA:-${GITHUB_SHA:-${CI_COMMIT_SHA:-}}}
head_ref=${GITHUB_HEAD_REF:-}
branch=${TASKSGODZILLA_CI_BRANCH:-${head_ref:-${GITHUB_REF_NAME:-${CI_COMMIT_REF_NAME:-}}}}
repository=${TASKSGODZILLA_CI_REPOSITORY:-${GITHUB_REPOSITORY:-${CI_PROJECT_PATH:-}}}
actions_run=""
if [ -n "${GITHUB_RUN_ID:-}" ]; then
  actions_run="${GITHUB_SERVER_URL:-https://github.com}/${GITHUB_REPOSITORY:-}/actions/runs/${GITHUB_RUN_ID}"
fi
link=${TASKSGODZILLA_CI_URL:-${CI_PIPELINE_URL:-$actions_run}}
name=$(plain "${TASKSGODZILLA_CI_NAME:-ci/report.sh}")

matches "$sha" '^([0-9a-f]{40}|[0-9a-f]{64})$' || fail "the commit SHA is missing or not a full SHA: '$sha'"
matches "$branch" '^[A-Za-z0-9._][A-Za-z0-9._/-]{0,254}$' || fail "the branch is missing or unusual: '$branch'"
matches "$repository" '^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)+$' || fail "the repository is missing: '$repository'"
if [ -n "$link" ] && matches "$link" '^https?://[^"\\[:space:][:cntrl:]]+$'; then
  link_json="\"$link\""
else
  link_json=null
fi

case "$token" in *"$(printf '\r')"*|*"
"*) fail "TASKSGODZILLA_WEBHOOK_TOKEN must be one line" ;; esac

umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
trap 'exit 1' INT TERM
delivery="report-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"

if [ "$provider" = github ]; then
  endpoint="${base%/}/webhooks/github"
  printf '{"sha":"%s","state":"%s","context":"%s","description":"%s","target_url":%s,"branches":[{"name":"%s","commit":{"sha":"%s"}}],"repository":{"full_name":"%s"}}' \
    "$sha" "$github_state" "$name" "$description" "$link_json" "$branch" "$sha" "$repository" > "$work/body"
  signature=$(openssl dgst -sha256 -hmac "$token" -r < "$work/body" | cut -d' ' -f1)
  matches "$signature" '^[0-9a-f]{64}$' || fail "openssl could not sign the report"
  printf '%s\n' "X-GitHub-Event: status" "X-GitHub-Delivery: $delivery" \
    "X-Hub-Signature-256: sha256=$signature" > "$work/headers"
else
  endpoint="${base%/}/webhooks/gitlab"
  pipeline=${CI_PIPELINE_ID:-0}
  matches "$pipeline" '^[0-9]{1,18}$' || pipeline=0
  printf '{"object_kind":"pipeline","object_attributes":{"id":%s,"ref":"%s","tag":false,"sha":"%s","status":"%s","url":%s},"merge_request":null,"project":{"path_with_namespace":"%s"},"builds":[{"name":"%s","status":"%s","failure_reason":"%s"}]}' \
    "$pipeline" "$branch" "$sha" "$gitlab_status" "$link_json" "$repository" "$name" "$gitlab_status" "$description" > "$work/body"
  printf '%s\n' "X-Gitlab-Event: Pipeline Hook" "X-Gitlab-Token: $token" \
    "X-Gitlab-Event-UUID: $delivery" "Idempotency-Key: $delivery" > "$work/headers"
fi

# A retry re-sends the same delivery id, so the service acts once however many copies arrive.
status=$(curl --silent --show-error --max-time 30 --retry 3 --retry-delay 2 \
  --output "$work/answer" --write-out '%{http_code}' \
  --header "Content-Type: application/json" --header "User-Agent: tasksgodzilla-report" \
  --header "@$work/headers" --data-binary "@$work/body" "$endpoint") || status=000

case "$status" in
  2??) echo "report.sh: $result reported for $sha on $branch ($status)"; exit 0 ;;
  *) echo "report.sh: the service answered $status: $(dd bs=500 count=1 < "$work/answer" 2>/dev/null)" >&2; exit 1 ;;
esac
