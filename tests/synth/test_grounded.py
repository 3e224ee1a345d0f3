"""The groundedness check: an invented fact is dropped, a copied one kept, whatever the judge says."""

import pytest

from protege.synth.grounded import NOT_DECLINED, NUMBERS, WORDS, check_grounded

SOURCE = (
    "Tune-Up Basic: $79, ready in 2 working days. It covers gear and brake adjustment, a chain clean and lube, "
    "and a safety check. Bring your bike to the Downtown store at 214 Millrace Street, open 10:00-18:00."
)


def test_an_answer_copied_from_the_source_is_kept():
    answer = "A Tune-Up Basic costs 79 dollars and takes two working days: we adjust your gears and brakes and clean the chain."
    g = check_grounded(answer, SOURCE, expect="facts")
    assert g.unsupported_numbers == () and g.support == pytest.approx(1.0)
    assert g.failure(0.7) is None


def test_a_made_up_price_is_dropped():
    g = check_grounded("A Tune-Up Basic costs $89 and takes 2 working days.", SOURCE, expect="facts")
    assert g.unsupported_numbers == ("89",)
    reason, detail = g.failure(0.7)
    assert reason == NUMBERS and detail == "89"


def test_made_up_times_and_phone_numbers_are_dropped_but_reformatted_ones_kept():
    assert check_grounded("The Downtown store opens at 10am and closes at 6pm.", SOURCE, expect="facts").failure(0.7) is None
    g = check_grounded("The Downtown store opens at 9am; call 555-0199.", SOURCE, expect="facts")
    assert g.unsupported_numbers == ("9:00", "555", "0199")


def test_made_up_claims_without_numbers_are_dropped_by_their_words():
    answer = "The tune-up includes a free replacement saddle, new handlebar tape and a lifetime frame inspection."
    g = check_grounded(answer, SOURCE, expect="facts")
    assert g.support < 0.5 and "saddle" in g.unsupported_words
    assert g.failure(0.7)[0] == WORDS


def test_list_numbers_and_number_words_are_not_invented_numbers():
    answer = "1. Bring your bike to the Downtown store.\n2. One of our mechanics does the safety check."
    assert check_grounded(answer, SOURCE, expect="facts").unsupported_numbers == ()


def test_an_answer_that_should_decline_must_decline():
    hand_off = "Sorry, I can only help with questions about our bikes and service. For car repairs please ask a garage."
    assert check_grounded(hand_off, SOURCE, expect="decline").failure(0.7) is None
    answered = check_grounded("Sure, an oil change for your car costs $40.", SOURCE, expect="decline")
    assert answered.failure(0.7)[0] == NUMBERS  # an invented number comes first
    g = check_grounded("Sure, we change car oil too.", SOURCE, expect="decline")
    assert g.declined is False and g.failure(0.7)[0] == NOT_DECLINED
