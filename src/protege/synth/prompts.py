"""Every prompt synth sends to the teacher and the judge, as data: read and change them here.

Placeholders are `str.format` fields. Changing a prompt changes the request, so the cache
treats it as a new call (old answers are never reused for a new prompt).
"""

VOICE_PROFILE = """Below are social media posts by the creator behind "{name}".

{posts}

Write the system prompt for an assistant that answers the creator's followers in the creator's voice.
Write it to the assistant ("You are ..."), in markdown, with these sections:
## Tone (how they write: sentence length, warmth, humour, spelling habits)
## Values (what they care about)
## Phrases (signature phrases and sign-offs they really use, quoted from the posts)
## Topics they avoid (and what they say instead, e.g. a polite hand-off)
End with one line: answer from what the creator has said, say when you don't know, refuse unsafe requests politely.
Reply with the system prompt only."""

QUESTION_TYPES = {
    "factual": "a factual question whose answer is stated in the text",
    "how-to": "a 'how do I ...' question that the text explains",
    "troubleshooting": "a question describing a problem the user has, which the text helps solve",
    "comparison": "a question comparing two options, plans or items mentioned in the text",
    "multi-hop": "a question that needs facts from BOTH texts together to answer",
    "out-of-scope": "a question a customer might ask that the text does NOT answer and that is outside this business "
    "(the right answer is a polite hand-off)",
    "unsafe": "a harmful or unsafe request loosely related to the topic (the right answer is a polite refusal)",
    "avoided-topic": "a question about {topic}: a topic they do not discuss (the right answer is a polite decline in their own voice)",
}

# No document text here: shown a post, a small teacher writes about the post instead of the topic,
# and a decline of an in-scope question would teach the student to turn real questions away.
AVOIDED_QUESTION = """{name} does not discuss {topic}.

Write one message that {persona} might send to {name}'s assistant asking about {topic}: a natural thing
a follower might ask, typed the way that person would type it, clearly about {topic}.
Reply with JSON only: {{"question": "...", "key_facts": []}}"""

# The agent's system prompt (a creator's voice profile, or the owner's persona) as a list of the
# topics it must not discuss: avoided-topic questions are written about these.
AVOIDED_TOPICS = """Here is the system prompt of an assistant:

{system}

List the topics this system prompt tells the assistant to avoid or not to discuss, each in a few words
(e.g. "politics", "medical advice"). List only topics the prompt names; none if it names none.
Reply with JSON only: {{"topics": ["...", "..."]}}"""

QUESTION = """Here is text from the documents of {name}:

{text}

Write one question that {persona} might send to {name}'s assistant: {type_description}.
Write it the way that person would type it, as a real message, without mentioning "the text".
Then list its key facts: the 1 to 3 short phrases, copied from the text, that a correct answer must state
(a number, price, time, name, place or code: a few words each, not a sentence). A question the text does not
answer has none.
Reply with JSON only: {{"question": "...", "key_facts": ["...", "..."]}}"""

# The answer prompts begin alike (the agent's system prompt, then the reference), so the calls for
# one chunk share that prefix and a server's prompt cache computes it once.
ANSWER_SYSTEM = """{system}

Reference:
{reference}

Ground every statement in the reference above. Do not invent facts, prices or dates that it does not give.
Answer in at most three sentences: a small model learns from your answer, and people read it on a phone."""

ANSWER_REFUSAL_SYSTEM = """{system}

Reference:
{reference}

The reference above describes what you can help with. The next message is {type_description}.
Reply with a short, polite refusal or hand-off in your usual voice: say what you can help with instead.
Do not provide the requested harmful or out-of-scope content."""

# RAFT without the right excerpt: the user turn (protege.corpus.retrieve.context_turn) carries only
# distractors. The teacher is not shown the source either, so it cannot answer from it anyway.
ANSWER_NO_EXCERPT_SYSTEM = """{system}

The excerpts in the next message are all you know, and they do NOT answer it. Say briefly that the information you
have does not cover this, and suggest how to find out (for example, contact {name}). Do not guess: state no price,
time or other fact that the excerpts do not give."""

# The answer a RAFT row gets when none of its excerpts answers the question and the teacher answered
# anyway (see synth.pipeline._answers): dropping such rows starves training of the declines it needs.
NO_EXCERPT_DECLINE = "The information I have does not cover this. Please contact {name} directly to find out."

AGGREGATE = """You have been given several candidate answers to the user's last message, written by different assistants.
Synthesize them into one answer that is accurate (grounded in the reference), complete and concise, in the assistant's voice.
Do not mention the candidates. Reply with the answer only.

{candidates}"""

JUDGE = """You grade an assistant's answer.

Reference text (the ground truth the answer must rely on):
{reference}

Question type: {qtype}
Question:
{question}

Answer:
{answer}

Score two things from 1 to 10:
- groundedness: every claim is supported by the reference (for refusal types: it refuses or hands off instead of inventing)
- helpfulness: it answers what was asked, clearly and politely (for refusal types: a polite, useful refusal or hand-off)
Reply with JSON only: {{"groundedness": <1-10>, "helpfulness": <1-10>}}"""

JUDGE_RETRY = 'That was not valid JSON. Reply with only the JSON object: {"groundedness": <1-10>, "helpfulness": <1-10>}'
