#!/usr/bin/env bash
# Sync one organization and one user from the identity provider (e.g. WorkOS) into Statesman, the way the web UI
# does: POST /internal/api/orgs/sync, then POST /internal/api/users. Safe to run again (it reports "existing").
#
#   STATESMAN_URL                        server (default http://localhost:8080)
#   OPENTACO_ENABLE_INTERNAL_ENDPOINTS   the webhook secret the server was started with
#   ORG_ID                               the organization's id at the identity provider (e.g. org_01H...)
#   ORG_NAME                             wanted URL name (a unique slug is derived when taken or invalid)
#   ORG_DISPLAY                          display name (default: ORG_NAME)
#   USER_ID                              the user's id at the identity provider; a new organization makes them admin
#   USER_EMAIL                           the user's email
#   USER_ROLE                            optional role to give the user (needs USER_ID to be an admin already)
set -euo pipefail

url="${STATESMAN_URL:-http://localhost:8080}"
url="${url%/}"
missing=()
for name in OPENTACO_ENABLE_INTERNAL_ENDPOINTS ORG_ID ORG_NAME USER_ID USER_EMAIL; do
  [[ -n "${!name:-}" ]] || missing+=("$name")
done
if ((${#missing[@]})); then
  echo "sync-org: set ${missing[*]} (see the top of $0)" >&2
  exit 2
fi
display="${ORG_DISPLAY:-$ORG_NAME}"

json_string() {  # a JSON string literal for $1 (quotes, backslashes and control characters escaped)
  local s="$1"
  s="${s//\\/\\\\}"; s="${s//\"/\\\"}"; s="${s//$'\n'/\\n}"; s="${s//$'\r'/\\r}"; s="${s//$'\t'/\\t}"
  printf '"%s"' "$s"
}

field() {  # the first string value of key $1 in the JSON document $2 (the server answers compact JSON)
  sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p" <<<"$2" | head -n 1
}

body_file="$(mktemp)"
trap 'rm -f "$body_file"' EXIT

call() {  # call METHOD PATH JSON [X-Org-ID] -> sets $status and $body
  local headers=(-H "Authorization: Bearer $OPENTACO_ENABLE_INTERNAL_ENDPOINTS" -H "X-User-ID: $USER_ID"
                 -H "X-Email: $USER_EMAIL" -H "Content-Type: application/json"
                 -H "X-Request-ID: sync-org-$$-$RANDOM")
  [[ -n "${4:-}" ]] && headers+=(-H "X-Org-ID: $4")
  if ! status="$(curl -sS -o "$body_file" -w '%{http_code}' -X "$1" "${headers[@]}" --data "$3" "$url$2")"; then
    echo "sync-org: cannot reach $url" >&2
    exit 1
  fi
  body="$(cat "$body_file")"
}

fail() {  # fail WHAT: print the server's message and exit non-zero
  local message
  message="$(field error "$body")"
  echo "sync-org: $1 failed: HTTP $status: ${message:-$body}" >&2
  [[ "$status" == 404 && "$body" != *error* ]] && echo "sync-org: is OPENTACO_ENABLE_INTERNAL_ENDPOINTS set on the server?" >&2
  exit 1
}

call POST /internal/api/orgs/sync \
  "{\"name\":$(json_string "$ORG_NAME"),\"display_name\":$(json_string "$display"),\"external_org_id\":$(json_string "$ORG_ID")}"
[[ "$status" == 200 || "$status" == 201 ]] || fail "organization sync"
org_name="$(field name "$body")"
echo "organization $org_name ($ORG_ID, \"$display\"): $(field status "$body")"

user_body="{\"subject\":$(json_string "$USER_ID"),\"email\":$(json_string "$USER_EMAIL")"
[[ -n "${USER_ROLE:-}" ]] && user_body+=",\"role_id\":$(json_string "$USER_ROLE")"
call POST /internal/api/users "$user_body}" "$ORG_ID"
[[ "$status" == 200 || "$status" == 201 ]] || fail "user sync"
roles="$(sed -n 's/.*"roles":\[\([^]]*\)\].*/\1/p' <<<"$body" | tr -d '"')"
echo "user $USER_ID <$USER_EMAIL> in $org_name: $(field status "$body") (roles: ${roles:-none})"
echo "state address: $url/state/$org_name/<workspace>"
