"""Where each function reads its model: its layer, ModelS3Uri, or (the API only) ApiModelS3Uri."""

from __future__ import annotations

import re

from tests.unit.test_template import RESOURCES, TEMPLATE, _resolve, _statements

FUNCTIONS = ("TaggerFunction", "ApiFunction")
URI_PATTERN = TEMPLATE["Parameters"]["ModelS3Uri"]["AllowedPattern"]


def _model_statements(function: str, **flags: bool) -> list[dict]:
    return [s for s in _statements(function, **flags) if s not in _statements(function)]


def test_model_uris_name_a_bucket_or_a_prefix_without_a_trailing_slash():
    assert TEMPLATE["Parameters"]["ApiModelS3Uri"]["AllowedPattern"] == URI_PATTERN
    for good in ("", "s3://models-bucket", "s3://models-bucket/clip", "s3://models.example/clip/vit-b-32"):
        assert re.fullmatch(URI_PATTERN, good), good
    for bad in ("s3://models-bucket/", "s3://models-bucket/clip/", "s3://models-bucket//clip", "s3://M", "https://x/y"):
        assert not re.fullmatch(URI_PATTERN, bad), bad


def test_model_bucket_statement_reads_only_the_model_prefix():
    """ModelS3Uri grants GetObject under its prefix and nothing else: no ListBucket, no other key."""
    cases = {
        "s3://models-bucket/clip/vit-b-32": "arn:aws:s3:::models-bucket/clip/vit-b-32/*",
        "s3://models-bucket": "arn:aws:s3:::models-bucket/*",
    }
    for name in FUNCTIONS:
        (model,) = _model_statements(name, model_bucket=True)
        assert model["Action"] == "s3:GetObject"
        for uri, arn in cases.items():
            assert _resolve(model["Resource"], {"ModelS3Uri": uri, "AWS::Partition": "aws"}) == arn


def test_api_model_uri_moves_only_the_apis_missing_files_to_s3():
    """ApiModelS3Uri (a text tower too big for a layer): the API may read that prefix and nothing
    else in S3, and fetches from it only what its layer lacks (MODEL_FILES_S3_URI, checked against
    the layer's manifest); the tagger keeps its layer and gains nothing. ModelS3Uri, when set, is
    where both read the whole model."""
    assert _model_statements("TaggerFunction", api_model_bucket=True) == []
    (api,) = _model_statements("ApiFunction", api_model_bucket=True)
    assert api["Action"] == "s3:GetObject"
    params = {"ApiModelS3Uri": "s3://api-models/siglip2", "AWS::Partition": "aws"}
    assert _resolve(api["Resource"], params) == "arn:aws:s3:::api-models/siglip2/*"
    both = {**params, "ModelS3Uri": "s3://models-bucket/clip"}
    for function in ("ApiFunction", "TaggerFunction"):
        (statement,) = _model_statements(function, api_model_bucket=True, model_bucket=True)
        assert _resolve(statement["Resource"], both) == "arn:aws:s3:::models-bucket/clip/*"
    variables = RESOURCES["ApiFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["MODEL_FILES_S3_URI"] == {"Ref": "ApiModelS3Uri"} and "MODEL_S3_URI" not in variables
    assert TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]["MODEL_S3_URI"] == {"Ref": "ModelS3Uri"}


def test_an_api_reading_s3_may_take_api_gateways_29_s():
    timeout = RESOURCES["ApiFunction"]["Properties"]["Timeout"]
    assert [_resolve(timeout, p) for p in ({}, {"ApiModelS3Uri": "s3://m/p"}, {"ModelS3Uri": "s3://m/p"})] == [
        10,
        29,
        29,
    ]


def test_tmp_follows_the_parameter_only_for_a_function_reading_s3():
    param = TEMPLATE["Parameters"]["ModelTmpStorageMB"]
    assert (param["Default"], param["MinValue"], param["MaxValue"]) == (1024, 512, 10240)
    size = {f: RESOURCES[f]["Properties"]["EphemeralStorage"]["Size"] for f in FUNCTIONS}
    for params, tagger, api in [
        ({}, 512, 512),
        ({"ModelS3Uri": "s3://m/p"}, 2048, 2048),
        ({"ApiModelS3Uri": "s3://m/p"}, 512, 2048),
    ]:
        params = {"ModelTmpStorageMB": 2048, **params}
        assert (_resolve(size["TaggerFunction"], params), _resolve(size["ApiFunction"], params)) == (tagger, api)
