import pytest
from cliptag import keys
from cliptag.store import BadToken, decode_token, encode_token
from hypothesis import given
from hypothesis import strategies as st

scores = st.floats(min_value=-1.0, max_value=1.0, allow_nan=False)


@given(scores, scores)
def test_encoded_scores_sort_like_scores(a, b):
    if round(a, 6) < round(b, 6) - 1e-6:
        assert keys.encode_score(a) < keys.encode_score(b)


@given(scores)
def test_score_round_trip_to_six_decimals(s):
    assert abs(keys.decode_score(keys.encode_score(s)) - s) <= 1e-6


def test_index_sort_key_carries_object_ref_with_slashes():
    sk = keys.tag_index_sk(0.31, "bucket/a/b c.jpg")
    assert keys.ref_from_index_sk(sk) == "bucket/a/b c.jpg"


def test_shards_are_stable_and_in_range():
    assert keys.tag_index_pk("dog") == "TAG#dog"
    shard = keys.shard_of("b/k.jpg", 4)
    assert 0 <= shard < 4 and shard == keys.shard_of("b/k.jpg", 4)
    assert keys.tag_index_pk("dog", shard, 4) == f"TAG#dog#{shard}"


def test_token_round_trip():
    positions = [keys.tag_index_sk(0.2, "b/k"), ""]
    assert decode_token(encode_token(positions), 2) == positions


@pytest.mark.parametrize("token", ["garbage!", "eyJ2IjoxfQ", encode_token(["not-a-key"]), encode_token(["", ""])])
def test_tampered_tokens_are_refused(token):
    with pytest.raises(BadToken):
        decode_token(token, 1)
