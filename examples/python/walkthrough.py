"""The usage-plan walk-through as a boto3 user writes it for API Gateway.

Against Tollgate, only the client line changes. Run it next to `make run`:

    python3 examples/python/walkthrough.py
"""

import datetime
import os
import time
import urllib.error
import urllib.request

import tollgate

BASE = os.environ.get("TOLLGATE_URL", "http://localhost:8080")
API_ID, STAGE = os.environ.get("API_ID", "local"), os.environ.get("STAGE", "$default")

# client = boto3.client("apigateway")
client = tollgate.local(BASE)

plan = client.create_usage_plan(
    name="Basic",
    apiStages=[{"apiId": API_ID, "stage": STAGE}],
    throttle={"rateLimit": 1, "burstLimit": 2},
    quota={"limit": 5, "period": "DAY"},
)
key = client.create_api_key(name="walkthrough", enabled=True)
client.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
print("plan", plan["id"], "key", key["id"])


def call_api():
    req = urllib.request.Request(f"{BASE}/echo", headers={"x-api-key": key["value"]})
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


statuses = []
for _ in range(6):
    statuses.append(call_api())
    time.sleep(1.05)  # under the 1 request a second rate
print("statuses", statuses)

today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
usage = client.get_usage(usagePlanId=plan["id"], startDate=today, endDate=today)
print("usage", usage["items"][key["id"]])

client.update_usage(usagePlanId=plan["id"], keyId=key["id"],
                    patchOperations=[{"op": "replace", "path": "/remaining", "value": "2"}])
time.sleep(1.1)
print("after extension", call_api())

# Tollgate's extension: a new value, the old one working for a grace period.
rotated = client.rotate_api_key(apiKey=key["id"], gracePeriod=60)
print("rotated", rotated["value"] != key["value"], "old value until", rotated["previousValueExpiresAt"])

# Tags as API Gateway has them; tollgate:enforce=shadow watches the plan's limits.
arn = f"arn:aws:apigateway:local::/usageplans/{plan['id']}"
client.tag_resource(resourceArn=arn, tags={"tollgate:enforce": "shadow"})
print("tags", client.get_tags(resourceArn=arn)["tags"])

try:
    client.get_usage_plan(usagePlanId="no-such-plan")
except client.exceptions.NotFoundException as e:
    print("error", e.response["Error"]["Code"])
