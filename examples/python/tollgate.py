"""A client for Tollgate's admin functions shaped like boto3's API Gateway client.

A script written for API Gateway usage plans keeps its calls, arguments and
error handling; only the client changes:

    client = boto3.client("apigateway")               # API Gateway REST usage plans
    client = tollgate.deployed(boto3.client("lambda"),  # Tollgate, deployed
                               keys="<KeysFunctionName>", plans="<PlansFunctionName>",
                               usage="<UsageFunctionName>")
    client = tollgate.local("http://localhost:8080")  # Tollgate, make run

Methods are boto3's (create_usage_plan, create_api_key, get_usage, ...), with
the API's camelCase arguments (usagePlanId=..., keyId=...). Errors are raised
as client.exceptions.<ErrorType> (NotFoundException, ConflictException, ...),
with e.response["Error"]["Code"] and ["Message"] as in botocore.
"""

import json
import urllib.error
import urllib.request

# Which function serves each action.
FUNCTIONS = {
    **dict.fromkeys(["CreateApiKey", "GetApiKey", "GetApiKeys", "UpdateApiKey", "DeleteApiKey", "ImportApiKeys",
                     "RotateApiKey"], "keys"),
    **dict.fromkeys(["CreateUsagePlan", "GetUsagePlan", "GetUsagePlans", "UpdateUsagePlan", "DeleteUsagePlan",
                     "CreateUsagePlanKey", "GetUsagePlanKey", "GetUsagePlanKeys", "DeleteUsagePlanKey"], "plans"),
    **dict.fromkeys(["GetUsage", "UpdateUsage"], "usage"),
}

# Tag actions go to the function that serves the resourceArn's kind.
TAG_ACTIONS = {"TagResource", "UntagResource", "GetTags"}


def _function(action, kwargs):
    if action in TAG_ACTIONS:
        return "plans" if "/usageplans/" in kwargs.get("resourceArn", "") else "keys"
    return FUNCTIONS[action]


class ClientError(Exception):
    """An error from Tollgate, shaped like botocore's ClientError."""

    def __init__(self, code, message, operation):
        super().__init__(f"An error occurred ({code}) when calling the {operation} operation: {message}")
        self.response = {"Error": {"Code": code, "Message": message}}
        self.operation_name = operation


class _Exceptions:
    ClientError = ClientError

    def __getattr__(self, code):
        cls = type(code, (ClientError,), {})
        setattr(self, code, cls)
        return cls


class Client:
    """Calls Tollgate's admin functions through `send(function, payload)`,
    which returns (ok, decoded JSON)."""

    def __init__(self, send):
        self._send = send
        self.exceptions = _Exceptions()

    def __getattr__(self, method):
        action = "".join(part.capitalize() for part in method.split("_"))
        if action not in FUNCTIONS and action not in TAG_ACTIONS:
            raise AttributeError(f"Tollgate has no operation {action} ({method})")

        def call(**kwargs):
            ok, body = self._send(_function(action, kwargs), {"action": action, **kwargs})
            if not ok:
                code = body.get("errorType", "ServiceUnavailableException")
                raise getattr(self.exceptions, code)(code, body.get("errorMessage", ""), action)
            return body

        call.__name__ = method
        return call


def local(url="http://localhost:8080"):
    """A client for the local stack (make run): POST <url>/_admin/<function>."""

    def send(function, payload):
        req = urllib.request.Request(f"{url}/_admin/{function}", data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req) as resp:
                return True, json.load(resp)
        except urllib.error.HTTPError as e:
            return False, json.load(e)

    return Client(send)


def deployed(lambda_client, keys, plans, usage):
    """A client for the deployed stack, through a boto3 Lambda client and the
    stack's KeysFunctionName, PlansFunctionName and UsageFunctionName outputs."""
    names = {"keys": keys, "plans": plans, "usage": usage}

    def send(function, payload):
        resp = lambda_client.invoke(FunctionName=names[function], Payload=json.dumps(payload).encode())
        body = json.loads(resp["Payload"].read())
        return "FunctionError" not in resp, body

    return Client(send)
