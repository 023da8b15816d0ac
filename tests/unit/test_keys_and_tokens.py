import pytest
from cliptag import keys
from cliptag.tokens import BadToken, PageTokens
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


def test_each_model_has_tag_partitions_of_its_own_and_the_first_keeps_the_original_ones():
    first, other = "openai/clip@main:int8:aa", "open_clip:ViT-B-32-256@datacomp:int8:bb"
    assert keys.tag_space(first, first) == "" and keys.tag_space("", first) == ""
    space = keys.tag_space(other, first)
    assert len(space) == keys.SPACE_DIGITS and space == keys.tag_space(other, "anything else")
    assert keys.tag_index_pk("dog", space=space) == f"TAG@{space}#dog"
    assert keys.tag_index_pk("dog", 3, 4, space) == f"TAG@{space}#dog#3"
    # A tag named like a space cannot reach another model's partition: the prefixes differ.
    assert not keys.tag_index_pk(f"@{space}#dog").startswith(f"TAG@{space}#")
    assert keys.space_of_index_pk(keys.tag_index_pk("dog", 1, 2, space)) == space
    assert keys.space_of_index_pk(keys.tag_index_pk("dog", 1, 2)) == ""


def test_a_deployment_recorded_before_tag_spaces_makes_its_model_the_first():
    from cliptag.adapters.dynamodb import items

    item = {"model": "m1", "vocabulary_version": "v", "scoring": "s", "top_k": 10, "min_score": 0.2}
    assert items.deployment_from_item(item).legacy_model == "m1"
    assert items.deployment_from_item({**item, "legacy_model": "m0"}).legacy_model == "m0"


SECRET = b"a-test-secret-of-32-bytes-length"
QUERY = "dog\n-1.0"


def test_token_round_trip():
    tokens = PageTokens(SECRET)
    positions = [keys.tag_index_sk(0.2, "b/k"), ""]
    assert tokens.decode(tokens.encode(positions, QUERY), QUERY, 2) == positions


def _flip(token: str, at: int) -> str:
    return token[:at] + ("A" if token[at] != "A" else "B") + token[at + 1 :]


@given(st.data())
def test_any_edited_token_is_refused(data):
    tokens = PageTokens(SECRET)
    token = tokens.encode([keys.tag_index_sk(0.25, "bucket/photos/cat.jpg")], QUERY)
    at = data.draw(st.integers(0, len(token) - 1).filter(lambda i: token[i] != "."))
    with pytest.raises(BadToken):
        tokens.decode(_flip(token, at), QUERY, 1)


def test_tokens_are_bound_to_their_query_and_secret():
    token = PageTokens(SECRET).encode([keys.tag_index_sk(0.2, "b/k")], QUERY)
    with pytest.raises(BadToken, match="not issued for this query"):
        PageTokens(SECRET).decode(token, "cat\n-1.0", 1)  # another tag
    with pytest.raises(BadToken, match="not issued for this query"):
        PageTokens(SECRET).decode(token, "dog\n0.2", 1)  # another min_score
    with pytest.raises(BadToken):
        PageTokens(b"another-secret-of-32-bytes-long!").decode(token, QUERY, 1)


@pytest.mark.parametrize("token", ["garbage!", "eyJ2IjoxfQ", "eyJ2IjoxfQ.AAAA", "..", "a" * 300])
def test_malformed_tokens_are_refused(token):
    with pytest.raises(BadToken):
        PageTokens(SECRET).decode(token, QUERY, 1)


def test_a_token_from_another_shard_layout_is_refused_even_when_signed():
    tokens = PageTokens(SECRET)
    with pytest.raises(BadToken, match="another index layout"):
        tokens.decode(tokens.encode(["", ""], QUERY), QUERY, 1)


def test_an_edited_token_is_called_invalid():
    tokens = PageTokens(SECRET)
    token = tokens.encode([keys.tag_index_sk(0.25, "b/cat.jpg")], QUERY)
    with pytest.raises(BadToken, match=r"^invalid token"):
        tokens.decode(_flip(token, 3), QUERY, 1)


@given(st.floats(min_value=-1.0, max_value=1.0, allow_nan=False))
def test_the_index_gives_back_exactly_the_stored_score(s):
    stored = keys.round_score(s)
    assert keys.score_from_index_sk(keys.tag_index_sk(stored, "b/k")) == stored
