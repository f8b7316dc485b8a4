#!/usr/bin/env bash
# The README's walk-through, as one script: run `make run` in another
# terminal first, and put tollgate on your PATH (go install ./cmd/tollgate).
# Besides tollgate it uses only curl, grep and date.
set -euo pipefail

URL=${URL:-http://localhost:8080}
export TOLLGATE_ENDPOINT_URL=$URL

echo "== 1. Create a usage plan: 1 request a second, bursts of 2, 5 requests a day"
PLAN=$(tollgate create-usage-plan --name Basic --api-stages 'apiId=local,stage=$default' --throttle burstLimit=2,rateLimit=1 --quota limit=5,period=DAY --query id --output text)
tollgate get-usage-plan --usage-plan-id $PLAN

echo "== 2. Create an API key, and put it in the plan"
read KEY_ID KEY < <(tollgate create-api-key --name my-first-key --enabled --query '[id, value]' --output text)
echo "API key $KEY_ID: $KEY"
tollgate create-usage-plan-key --usage-plan-id $PLAN --key-id $KEY_ID --key-type API_KEY

echo "== 3. Call the API six times: the sixth is over the quota"
for i in 1 2 3 4 5 6; do curl -s -o /dev/null -w '%{http_code} ' $URL/echo -H "x-api-key: $KEY"; sleep 1; done; echo

echo "== 4. Read today's usage: [used, remaining]"
TODAY=$(date -u +%F)
tollgate get-usage --usage-plan-id $PLAN --start-date $TODAY --end-date $TODAY --output table
tollgate usage-report --usage-plan-id $PLAN --days 7

echo "== 5. Grant 10 more requests today, and call again"
tollgate update-usage --usage-plan-id $PLAN --key-id $KEY_ID --patch-operations op=replace,path=/remaining,value=10 --query "items.\"$KEY_ID\"" --output text
sleep 1; curl -s -o /dev/null -w '%{http_code}\n' $URL/echo -H "x-api-key: $KEY"

echo "== 6. Rotate the key's value: the old one works for a 5-second grace period, then not"
read NEW_KEY ENDS < <(tollgate rotate-api-key --api-key $KEY_ID --grace-period 5 --query '[value, previousValueExpiresAt]' --output text)
echo "New value $NEW_KEY; the old one works until $ENDS"
for k in $KEY $NEW_KEY; do curl -s -o /dev/null -w '%{http_code} ' $URL/echo -H "x-api-key: $k"; sleep 1; done; echo
sleep 5
for k in $KEY $NEW_KEY; do curl -s -o /dev/null -w '%{http_code} ' $URL/echo -H "x-api-key: $k"; sleep 1; done; echo

echo "== 7. Disable the key: its next request is refused"
tollgate update-api-key --api-key $KEY_ID --patch-operations op=replace,path=/enabled,value=false --query enabled
curl -s -o /dev/null -w '%{http_code}\n' $URL/echo -H "x-api-key: $NEW_KEY"

echo "== 8. A plan in shadow lets requests over its quota through, marked; switched to enforce, it refuses them"
TRIAL=$(tollgate create-usage-plan --name Trial --api-stages 'apiId=local,stage=$default' --quota limit=2,period=DAY --tags tollgate:enforce=shadow --query id --output text)
read TRIAL_KEY_ID TRIAL_KEY < <(tollgate create-api-key --name trial-key --enabled --query '[id, value]' --output text)
tollgate create-usage-plan-key --usage-plan-id $TRIAL --key-id $TRIAL_KEY_ID --key-type API_KEY --query type --output text
for i in 1 2 3; do curl -s -o /dev/null -w '%{http_code} ' $URL/echo -H "x-api-key: $TRIAL_KEY"; done; echo
curl -s $URL/echo -H "x-api-key: $TRIAL_KEY" | grep -E '"(limitExceeded|shadow)"'
tollgate tag-resource --resource-arn arn:aws:apigateway:local::/usageplans/$TRIAL --tags tollgate:enforce=enforce
tollgate get-tags --resource-arn arn:aws:apigateway:local::/usageplans/$TRIAL
sleep 1; curl -s -o /dev/null -w '%{http_code}\n' $URL/echo -H "x-api-key: $TRIAL_KEY"
