"""The DynamoDB adapter: the only package that talks to the tags table.

| module       | job                                                               |
|--------------|-------------------------------------------------------------------|
| `table`      | the boto3 client: typed items, error mapping, batching, paginated queries |
| `items`      | records <-> items (from the records' own field definitions)       |
| `contents`   | the content cache and its claims (ContentCache port)              |
| `objects`    | converging writes of each object's items (ObjectStore port)       |
| `tag_index`  | the sharded "objects with tag T, best first" query (TagIndex port) |
| `failures`   | failed objects, newest first, from the sparse failure index       |
| `duplicates` | near-duplicate pairs under both objects (DuplicateStore port)     |
| `control`    | what the deployed tagger runs; checkpoints of resumable jobs      |
| `decisions`  | people's decisions on tags, per content (DecisionStore port)      |
| `taught`     | tags taught by example: a head and one item per tag (TaughtStore port) |
"""

from cliptag.adapters.dynamodb.contents import DynamoContentCache
from cliptag.adapters.dynamodb.control import DynamoCheckpoints, DynamoDeployments
from cliptag.adapters.dynamodb.decisions import DynamoDecisions
from cliptag.adapters.dynamodb.duplicates import DynamoDuplicates
from cliptag.adapters.dynamodb.failures import DynamoFailureIndex
from cliptag.adapters.dynamodb.objects import DynamoObjectStore
from cliptag.adapters.dynamodb.table import Table
from cliptag.adapters.dynamodb.tag_index import DynamoTagIndex
from cliptag.adapters.dynamodb.taught import DynamoTaughtTags

__all__ = [
    "DynamoCheckpoints",
    "DynamoContentCache",
    "DynamoDecisions",
    "DynamoDeployments",
    "DynamoDuplicates",
    "DynamoFailureIndex",
    "DynamoObjectStore",
    "DynamoTagIndex",
    "DynamoTaughtTags",
    "Table",
]
