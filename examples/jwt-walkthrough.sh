#!/usr/bin/env bash
# The README's JWT walk-through, as one script: run `AUTH_MODE=jwt make run`
# in another terminal first, and put tollgate on your PATH (go install ./cmd/tollgate).
# Besides tollgate it uses only curl and sed.
set -euo pipefail

URL=${URL:-http://localhost:8080}
export TOLLGATE_ENDPOINT_URL=$URL

echo "== 1. A usage plan: a request every 5 seconds, bursts of 2"
PLAN=$(tollgate create-usage-plan --name "Per user" --api-stages 'apiId=local,stage=$default' --throttle burstLimit=2,rateLimit=0.2 --query id --output text)
tollgate get-usage-plan --usage-plan-id $PLAN --query throttle

echo "== 2. A key for alice's identity, in the plan"
KEY_ID=$(tollgate create-api-key --name alice --enabled --identities alice --query id --output text)
tollgate create-usage-plan-key --usage-plan-id $PLAN --key-id $KEY_ID --key-type API_KEY
tollgate get-api-key --api-key $KEY_ID --query '{name: name, identities: identities}'

echo "== 3. A token for alice from the local issuer, and a call with it"
TOKEN=$(curl -s $URL/_local/token -d '{"sub": "alice", "scope": "items:read"}' | sed -n 's/.*"access_token": *"\([^"]*\)".*/\1/p')
curl -s $URL/echo -H "Authorization: Bearer $TOKEN"

echo "== 4. Two more calls: the burst of 2 is spent, so the second is throttled"
for i in 1 2; do curl -s -o /dev/null -w '%{http_code} ' $URL/echo -H "Authorization: Bearer $TOKEN"; done; echo

echo "== 5. Remove alice's identity from the key; 5 s later the bucket has a token again, but she is refused"
tollgate update-api-key --api-key $KEY_ID --patch-operations op=remove,path=/identities,value=alice
sleep 5; curl -s -o /dev/null -w '%{http_code}\n' $URL/echo -H "Authorization: Bearer $TOKEN"

echo "== 6. No token at all: API Gateway's own 401, before the authorizer"
curl -s -o /dev/null -w '%{http_code}\n' $URL/echo
