"""The normalization key facts are matched through (synth's checks and eval's fact recall)."""

import pytest

from protege.corpus.facts import contains, declines, normalize, tokens


@pytest.mark.parametrize(
    ("text", "fact"),
    [
        ("A full build costs 1200 dollars.", "$1,200"),
        ("The deposit is $1,200.00.", "1200"),
        ("We open at 9am on weekdays.", "9:00"),
        ("Doors open at 9 a.m.", "09:00"),
        ("We close at 18:00.", "6 pm"),
        ("We close at 6:00 PM sharp.", "18:00"),
        ("Open Monday through Friday.", "Monday-Friday"),
        ("Open Monday–Friday.", "Monday to Friday"),
        ("The warranty lasts two years.", "2 years"),
        ("Members get 10 percent off.", "10%"),
        ("Call CUSTOMER CARE: 555-0142.", "customer care 555 0142"),
        ("Ask about our helmets.", "helmet"),
        ("Rides start at noon.", "12:00"),
        ("A tube costs $4.50.", "4.5"),
        ("Policy RB-W-7 covers frames.", "rb-w-7"),
        ("Riverbend\u2019s  Eastbank   store", "riverbend's eastbank store"),
    ],
)
def test_a_fact_is_found_in_any_reasonable_wording(text, fact):
    assert contains(text, fact)


@pytest.mark.parametrize(
    ("text", "fact"),
    [
        ("A service costs $450.", "$45"),  # a number is a whole token, never a prefix
        ("Policy RB-W-70 applies.", "RB-W-7"),
        ("We open at 9:30.", "9:00"),
        ("We close at 6:00.", "18:00"),  # a bare 6:00 may be morning: not assumed to be 6 pm
        ("The warranty lasts three years.", "2 years"),
        ("Open Friday to Monday.", "Monday to Friday"),  # order matters
        ("anything", ""),  # an empty fact is never found
    ],
)
def test_a_different_fact_is_not_found(text, fact):
    assert not contains(text, fact)


def test_normalize_once_and_search_many_times():
    text = normalize("Tune-up: $79, ready in 2 days (Downtown store).")
    assert all(contains(text, f) for f in ("$79", "two days", "downtown", "tune up"))
    assert tokens("$1,200.00 and 3rd") == ["1200", "3"]


@pytest.mark.parametrize(
    ("text", "declined"),
    [
        ("I'm sorry, but I can't help with that.", True),
        ("That is outside what Riverbend Bikes can help with.", True),
        ("The provided information does not cover this. Please contact the shop.", True),
        ("I don't have details on that; I recommend calling customer care.", True),
        ("We can only help with questions about bikes.", True),
        # a creator declines in her own words (a voice profile's phrases)
        ("Oh love, I'm not the right person for that one.", True),
        ("I keep politics off this page, friends. Back to the beans!", True),
        ("I'd rather not get into diets here.", True),
        ("Braise it low and slow for two hours, then rest it.", False),
        ("Our Downtown store opens at 9am.", False),
        ("To remove the speed limiter, open the controller and cut the white wire.", False),
    ],
)
def test_declines(text, declined):
    assert declines(text) is declined
