from protege.synth.dedup import near_duplicates


def test_near_duplicates_map_to_the_first_of_their_group() -> None:
    texts = [
        "What are the opening hours of the downtown store on Saturday?",
        "How much does a basic tune-up cost?",
        "what are the opening hours of the Downtown store on saturday",  # case and punctuation only
        "What are the opening hours of the downtown store on a Saturday?",  # one word added
        "Can I rent an e-bike for a whole week?",
    ]
    assert near_duplicates(texts, threshold=0.8) == {2: 0, 3: 0}


def test_threshold_decides() -> None:
    texts = ["how long is the warranty on carbon frames", "how long is the warranty on carbon forks"]
    assert near_duplicates(texts, threshold=0.9) == {}
    assert near_duplicates(texts, threshold=0.6) == {1: 0}


def test_empty_and_distinct_inputs() -> None:
    assert near_duplicates([], threshold=0.8) == {}
    assert near_duplicates(["a b c", "d e f"], threshold=0.8) == {}
