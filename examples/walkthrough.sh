#!/usr/bin/env bash
# The README's walk-through, as one script: run `make run` in another
# terminal first. It uses only curl, sed and date.
set -euo pipefail

URL=${URL:-http://localhost:8080}
# field NAME: the first "NAME": "value" in the JSON on stdin.
field() { sed -n "s/.*\"$1\": \"\([^\"]*\)\".*/\1/p" | head -1; }

echo "== 1. Create a usage plan: 1 request a second, bursts of 2, 5 requests a day"
curl -s $URL/_admin/plans -d '{"action": "CreateUsagePlan", "name": "Basic", "apiStages": [{"apiId": "local", "stage": "$default"}], "throttle": {"rateLimit": 1, "burstLimit": 2}, "quota": {"limit": 5, "period": "DAY"}}' | tee plan.json
PLAN=$(field id < plan.json)

echo "== 2. Create an API key, and put it in the plan"
curl -s $URL/_admin/keys -d '{"action": "CreateApiKey", "name": "my-first-key"}' | tee key.json
KEY=$(field value < key.json)
KEY_ID=$(field id < key.json)
curl -s $URL/_admin/plans -d '{"action": "CreateUsagePlanKey", "usagePlanId": "'$PLAN'", "keyId": "'$KEY_ID'", "keyType": "API_KEY"}'

echo "== 3. Call the API six times: the sixth is over the quota"
for i in 1 2 3 4 5 6; do curl -s -o /dev/null -w '%{http_code} ' $URL/echo -H "x-api-key: $KEY"; sleep 1; done; echo

echo "== 4. Read today's usage: [used, remaining]"
TODAY=$(date -u +%F)
curl -s $URL/_admin/usage -d '{"action": "GetUsage", "usagePlanId": "'$PLAN'", "startDate": "'$TODAY'", "endDate": "'$TODAY'"}'

echo "== 5. Grant 10 more requests today, and call again"
curl -s $URL/_admin/usage -d '{"action": "UpdateUsage", "usagePlanId": "'$PLAN'", "keyId": "'$KEY_ID'", "patchOperations": [{"op": "replace", "path": "/remaining", "value": "10"}]}'
sleep 1; curl -s -o /dev/null -w '%{http_code}\n' $URL/echo -H "x-api-key: $KEY"

echo "== 6. Disable the key: its next request is refused"
curl -s $URL/_admin/keys -d '{"action": "UpdateApiKey", "apiKey": "'$KEY_ID'", "patchOperations": [{"op": "replace", "path": "/enabled", "value": "false"}]}'
curl -s -o /dev/null -w '%{http_code}\n' $URL/echo -H "x-api-key: $KEY"
