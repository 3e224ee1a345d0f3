"""Key facts: what the teacher listed, kept only where the source and its own answer bear it out."""

from protege.synth.key_facts import atoms, key_facts

SOURCE = ("Tune-Up Basic: $79, ready in 2 working days at the Downtown store. Open 10:00 - 18:00; call (555) 555-0142. "
          "Policy RB-W-7 covers frames for 7 years.")  # fmt: skip
SYSTEM = "You are the assistant of Riverbend Bikes (Downtown and Eastbank stores)."


def facts(listed, answer, question="How much is a tune-up?", expect="facts"):
    return key_facts(listed, source=SOURCE, answer=answer, question=question, system=SYSTEM, expect=expect)


def test_listed_facts_are_kept_only_if_in_the_source_and_in_the_answer():
    k = facts(["$79", "2 working days", "10:00 - 18:00", "$99 express"], "A Tune-Up Basic is 79 dollars, ready in two working days.")
    assert k.facts == ["$79", "2 working days"]
    assert (k.listed, k.not_in_source, k.not_in_answer, k.from_answer) == (4, 1, 1, False)


def test_a_listed_sentence_gives_its_numbers_and_names():
    listed = ["Open 10:00 - 18:00; call (555) 555-0142 for an appointment at the store"]
    k = facts(listed, "We are open from 10am to 6pm; call 555-555-0142.", question="When are you open?")
    assert k.facts == ["10:00 - 18:00", "(555) 555-0142"]


def test_what_the_question_or_the_system_prompt_already_says_is_no_key_fact():
    k = facts(["Tune-Up Basic", "Downtown", "$79"], "The Tune-Up Basic at Downtown is $79.", question="What is a Tune-Up Basic?")
    assert k.facts == ["$79"]


def test_without_a_surviving_listed_fact_the_answers_own_numbers_and_names_are_used():
    k = facts(["same-day service"], "Policy RB-W-7 covers frames for 7 years; a tune-up is $79 (or $99 express).")
    assert k.facts == ["7", "$79", "Policy RB-W-7"] and k.from_answer and k.not_in_source == 1


def test_a_question_to_decline_has_no_key_facts():
    k = facts(["$79"], "Sorry, we only service bikes.", expect="decline")
    assert k.facts == [] and k.listed == 1 and not k.from_answer


def test_atoms():
    assert atoms("Call Eastbank at (555) 555-0178.") == ["(555) 555-0178", "Eastbank"]
    assert atoms("The Riverbend Otter 1 costs $649, open 10:00 - 18:00.") == ["$649", "10:00 - 18:00", "Riverbend Otter 1"]
    assert atoms("Swollen batteries must not be shipped.") == []  # a capitalized first word is no name
