"""The local stack's resources in the AWS emulator, created by the first ``up`` and kept, with their
data, by the next one on the same emulator (``--aws-endpoint``), as ``sam deploy`` updates a stack:
the CloudFormation stack is updated, the vector bucket, its index and the pagination secret (which
moto's CloudFormation cannot create) are found again by their names."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from botocore.exceptions import ClientError

from devstack.intrinsics import Resolver

STACK_NAME = "cliptag-local"
VECTOR_BUCKET_PREFIX = f"{STACK_NAME}-vectors-"
SECRET_PREFIX = f"{STACK_NAME}-pagination-"


def deploy_stack(cfn: Any, template_body: str, parameters: list[dict[str, str]]) -> bool:
    """Create the stack, or update it where the emulator already holds one: True if it did.
    Resources whose definition did not change are left as they are (their data too)."""
    try:
        cfn.describe_stacks(StackName=STACK_NAME)
    except ClientError as err:
        if "does not exist" not in str(err):
            raise
        cfn.create_stack(StackName=STACK_NAME, TemplateBody=template_body, Parameters=parameters)
        return False
    try:
        cfn.update_stack(StackName=STACK_NAME, TemplateBody=template_body, Parameters=parameters)
    except ClientError as err:
        if "No updates are to be performed" not in str(err):
            raise
    return True


def vector_index(s3vectors: Any, template: dict[str, Any], parameters: dict[str, str]) -> tuple[str, str]:
    """The template's S3 Vectors bucket and index (moto's CloudFormation has neither type), with
    the properties the template gives them; (bucket name, index name). An existing bucket of the
    stack is kept, and its index of the same name (the name carries the dimension) with it."""
    found = s3vectors.list_vector_buckets(prefix=VECTOR_BUCKET_PREFIX).get("vectorBuckets", [])
    if found:
        bucket = found[0]["vectorBucketName"]
    else:  # CloudFormation names it in AWS
        bucket = f"{VECTOR_BUCKET_PREFIX}{uuid.uuid4().hex[:8]}"
        s3vectors.create_vector_bucket(vectorBucketName=bucket)
    arn = s3vectors.get_vector_bucket(vectorBucketName=bucket)["vectorBucket"]["vectorBucketArn"]
    resolver = Resolver(template, parameters, {("VectorBucket", "VectorBucketArn"): arn})
    props = resolver.resolve(template["Resources"]["ImageVectors"]["Properties"])
    indexes = s3vectors.list_indexes(vectorBucketName=bucket).get("indexes", [])
    if props["IndexName"] not in {i["indexName"] for i in indexes}:
        s3vectors.create_index(
            vectorBucketName=bucket,
            indexName=props["IndexName"],
            dataType=props["DataType"],
            dimension=int(props["Dimension"]),
            distanceMetric=props["DistanceMetric"],
            metadataConfiguration={
                "nonFilterableMetadataKeys": props["MetadataConfiguration"]["NonFilterableMetadataKeys"]
            },
        )
    return bucket, props["IndexName"]


def pagination_secret(secretsmanager: Any) -> str:
    """The template's PaginationSecret (moto's CloudFormation has no Secrets Manager): the stack's
    own if the emulator holds it (tokens already handed out stay valid), else a new one; its ARN."""
    found = secretsmanager.list_secrets(Filters=[{"Key": "name", "Values": [SECRET_PREFIX]}]).get("SecretList", [])
    for secret in found:
        if secret["Name"].startswith(SECRET_PREFIX):
            return str(secret["ARN"])
    created = secretsmanager.create_secret(
        Name=f"{SECRET_PREFIX}{uuid.uuid4().hex[:8]}", SecretString=secrets.token_urlsafe(48)
    )
    return str(created["ARN"])
