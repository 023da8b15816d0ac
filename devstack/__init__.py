"""The local stack: the whole pipeline on loopback, with real HTTP and real boto3.

moto's server plays S3, SQS, DynamoDB and CloudFormation (which creates the bucket, queues and
table from ``template.yaml``); a poller plays the SQS event source mapping for the tagger; a
small HTTP server plays API Gateway for the API function, like ``sam local start-api``.
"""
