"""Apply the SAM transform (``AWS::Serverless-2016-10-31``) as CloudFormation does when a change set is created.

Run as a script by an interpreter that has ``aws-sam-translator`` (the SAM CLI's: it pins a pydantic older than the
project's, so it cannot live in the project's environment): reads ``{"template": ..., "parameters": ...,
"region": ...}`` as JSON on stdin, writes the CloudFormation template as JSON on stdout. Imports nothing from this
package.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from samtranslator.translator.transform import transform  # type: ignore[import-not-found]

# The emulator holds no AWS managed policies to look names up in: the two SAM itself refers to, by their fixed ARNs.
_MANAGED_POLICIES = {
    "AWSLambdaBasicExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "AWSXrayWriteOnlyAccess": "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
}


class _ManagedPolicies:
    def load(self) -> dict[str, str]:
        return dict(_MANAGED_POLICIES)


def main() -> None:
    request: dict[str, Any] = json.load(sys.stdin)
    # The translator takes the pseudo parameters' region from a boto3 session: the stack's, not the environment's.
    os.environ["AWS_DEFAULT_REGION"] = request["region"]
    json.dump(transform(request["template"], request["parameters"], _ManagedPolicies()), sys.stdout)


if __name__ == "__main__":
    main()
