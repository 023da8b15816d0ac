import numpy as np
from cliptag.scoring import TagScorer, l2_normalise


def test_threshold_top_k_and_per_tag_override():
    tags = np.eye(4, dtype=np.float32)
    scorer = TagScorer.build(["a", "b", "c", "d"], tags, per_tag=[None, None, 0.9, None], min_score=0.2, top_k=2)
    image = l2_normalise(np.array([[0.8, 0.5, 0.6, 0.1]], dtype=np.float32))
    (result,) = scorer.tags(image)
    # "c" scores 0.53 but needs 0.9; "d" is below 0.2; top_k keeps the best two of what remains.
    assert [t.tag for t in result] == ["a", "b"]
    assert result[0].score > result[1].score


def test_top_k_is_best_first_over_many_tags():
    rng = np.random.default_rng(0)
    tags = l2_normalise(rng.normal(size=(1000, 32)).astype(np.float32))
    images = l2_normalise(rng.normal(size=(5, 32)).astype(np.float32))
    scorer = TagScorer.build([f"t{i}" for i in range(1000)], tags, [None] * 1000, min_score=-1.0, top_k=7)
    full = images @ tags.T
    for row, result in zip(full, scorer.tags(images), strict=True):
        assert [t.tag for t in result] == [f"t{i}" for i in np.argsort(-row)[:7]]
