#!/usr/bin/env bash
# The JWT walk-through of docs/jwt.md, as one script: run `AUTH_MODE=jwt make run`
# in another terminal first. It uses only curl and sed.
set -euo pipefail

URL=${URL:-http://localhost:8080}
# field NAME: the first "NAME": "value" in the JSON on stdin.
field() { sed -n "s/.*\"$1\": \"\([^\"]*\)\".*/\1/p" | head -1; }

echo "== 1. A usage plan: a request every 5 seconds, bursts of 2"
curl -s $URL/_admin/plans -d '{"action": "CreateUsagePlan", "name": "Per user", "apiStages": [{"apiId": "local", "stage": "$default"}], "throttle": {"rateLimit": 0.2, "burstLimit": 2}}' | tee plan.json
PLAN=$(field id < plan.json)

echo "== 2. A key for alice's identity, in the plan"
curl -s $URL/_admin/keys -d '{"action": "CreateApiKey", "name": "alice", "identities": ["alice"]}' | tee key.json
KEY_ID=$(field id < key.json)
curl -s $URL/_admin/plans -d '{"action": "CreateUsagePlanKey", "usagePlanId": "'$PLAN'", "keyId": "'$KEY_ID'", "keyType": "API_KEY"}'

echo "== 3. A token for alice from the local issuer, and a call with it"
TOKEN=$(curl -s $URL/_local/token -d '{"sub": "alice", "scope": "items:read"}' | field access_token)
curl -s $URL/echo -H "Authorization: Bearer $TOKEN"

echo "== 4. Two more calls: the burst of 2 is spent, so the second is throttled"
for i in 1 2; do curl -s -o /dev/null -w '%{http_code} ' $URL/echo -H "Authorization: Bearer $TOKEN"; done; echo

echo "== 5. Remove alice's identity from the key; 5 s later the bucket has a token again, but she is refused"
curl -s $URL/_admin/keys -d '{"action": "UpdateApiKey", "apiKey": "'$KEY_ID'", "patchOperations": [{"op": "remove", "path": "/identities", "value": "alice"}]}'
sleep 5; curl -s -o /dev/null -w '%{http_code}\n' $URL/echo -H "Authorization: Bearer $TOKEN"

echo "== 6. No token at all: API Gateway's own 401, before the authorizer"
curl -s -o /dev/null -w '%{http_code}\n' $URL/echo
