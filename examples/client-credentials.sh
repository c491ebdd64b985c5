#!/usr/bin/env bash
# The seed tutorial (the bundled otoroshi.yaml) as a script, curl only:
#   1. the JWKS lists the signing key,  2. the route refuses a call without a token,
#   3. the token endpoint issues a Bearer token,  4. the call with it reaches the backend,
#      which sees the Authorization header.
# Usage: examples/client-credentials.sh [GATEWAY_URL]   (default http://127.0.0.1:8080)
# Env: OAUTH_HOST (oauth.oto.tools), API_HOST (foo.oto.tools), CLIENT_ID (my-id), CLIENT_SECRET (my-secret)
set -euo pipefail
GW="${1:-http://127.0.0.1:8080}"
OAUTH_HOST="${OAUTH_HOST:-oauth.oto.tools}"
API_HOST="${API_HOST:-foo.oto.tools}"
CLIENT_ID="${CLIENT_ID:-my-id}"
CLIENT_SECRET="${CLIENT_SECRET:-my-secret}"
fail() { echo "FAILED: $*" >&2; exit 1; }

echo "== 1. JWKS"
jwks=$(curl -sS --max-time 10 -H "Host: $OAUTH_HOST" "$GW/.well-known/otoroshi/oauth/jwks.json")
echo "$jwks"
grep -q '"kid":"otoroshi-jwt-signing"' <<<"$jwks" || fail "the JWKS does not list otoroshi-jwt-signing"

echo "== 2. call the route without a token"
noauth=$(curl -sS --max-time 10 -H "Host: $API_HOST" -w '\n%{http_code}' "$GW/")
echo "$noauth"
grep -q 'No ApiKey provided' <<<"$noauth" || fail "expected No ApiKey provided"
[ "$(tail -n1 <<<"$noauth")" = "401" ] || fail "expected 401"

echo "== 3. get a token"
token_json=$(curl -sS --max-time 10 -X POST -H "Host: $OAUTH_HOST" -H 'Content-Type: application/json' \
  -d "{\"grant_type\":\"client_credentials\",\"client_id\":\"$CLIENT_ID\",\"client_secret\":\"$CLIENT_SECRET\"}" \
  "$GW/.well-known/otoroshi/oauth/token")
echo "$token_json"
grep -q '"token_type":"Bearer"' <<<"$token_json" || fail "no Bearer token issued"
token=$(sed -E 's/.*"access_token":"([^"]+)".*/\1/' <<<"$token_json")

echo "== 4. call the route with the token"
withauth=$(curl -sS --max-time 10 -H "Host: $API_HOST" -H "Authorization: Bearer $token" -w '\n%{http_code}' "$GW/")
echo "$withauth"
[ "$(tail -n1 <<<"$withauth")" = "200" ] || fail "expected 200 from the backend"
grep -qi "authorization" <<<"$withauth" || fail "the backend did not see the Authorization header"
grep -q "$token" <<<"$withauth" || fail "the backend did not receive the access token"
echo "OK: the seed tutorial works"
