"""A tiny OpenAI-compatible chat endpoint with canned answers and a fixed latency per answer.

It stands in for a remote teacher where the model is beside the point: measuring how synth
scales with concurrency against network-like latency (bench/synth_concurrency.py), and driving
the synth pipeline fast and deterministically in tests. It recognises synth's prompts by their
wording and answers each in the expected shape: questions with key facts, an answer, a judge's JSON verdict.

    python bench/canned_endpoint.py --port 8123 --delay 0.3
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WORDS = ("battery", "warranty", "frame", "saddle", "tyre", "chain", "brake", "pedal", "helmet", "rental",
         "gear", "wheel", "spoke", "light", "lock", "basket", "rack", "bell", "pump", "tube")  # fmt: skip
JUDGE_JSON = '{"groundedness": 8, "helpfulness": 7, "reason": "supported by the reference"}'


REFUSAL = "I'm sorry, but I can't assist with that."


INVENTED = "A same-day fix is $999."  # a fact found in no document: synth's groundedness check must drop it


GUESS = "Yes, you can do that at any of our stores."  # an answer to a question the excerpts do not cover


def canned_reply(messages: list[dict], seed: int | None, malformed_judge: bool, refusing: bool = False,
                 inventing: bool = False, guessing: bool = False) -> str:  # fmt: skip
    text = "\n".join(str(m.get("content", "")) for m in messages)
    digest = hashlib.sha256(f"{text}|{seed}".encode()).digest()
    if "Grade the candidate answer" in text:  # eval's rubric
        return '{"score": 7}'
    if "Which answer is better?" in text:  # eval's pairwise judge
        return '{"winner": "A"}'
    if "You grade an assistant's answer" in text:
        if malformed_judge and len(messages) == 1:
            return "Overall the answer looks fine and grounded, I would rate it well."
        return f"Sure! Here is my verdict:\n```json\n{JUDGE_JSON}\n```"
    if "assistant asking about " in text:  # an avoided-topic question (synth/avoided.py)
        topic = text.split("assistant asking about ", 1)[1].split(":", 1)[0]
        return json.dumps({"question": f"What do you think about {topic}, case {digest[3]}?", "key_facts": []})
    if "Write one question" in text:
        a, b, c = (WORDS[x % len(WORDS)] for x in digest[:3])
        # The key facts: the source's first words of its last line, as a grounded answer repeats it, and an invented one.
        source = text.split("\n\nWrite one question", 1)[0].strip().splitlines()
        fact = " ".join(source[-1].split()[:3]) if source else ""
        # Customers leave their own address: private PII that synth must redact.
        question = f"How does the {a} {b} policy compare for a {c}, case {digest[3]}? I am rider{digest[3]}@mail.example"
        return json.dumps({"question": question, "key_facts": [fact, "open 24/7"]})
    if "do NOT answer it" in text and guessing:  # a small teacher answers from its own knowledge anyway
        return GUESS
    if "do NOT answer it" in text:
        return "Sorry, the information I have does not cover this; please contact the shop."
    if "List the topics this system prompt tells" in text:  # synth/avoided.py
        return json.dumps({"topics": ["politics", "diet advice"] if "Topics they avoid" in text else []})
    if "social media posts" in text:
        return ("You are the creator. Tone: warm and brief. Phrases: 'low and slow'.\n"
                "## Topics they avoid\nPolitics, and diet or weight advice: 'I'm not the right person for that.'")
    if "Say OK" in text:
        return "OK"
    if refusing and digest[0] % 3 == 0:  # a third of the answers: the bare refusal small teachers give
        return REFUSAL
    # An answer quotes the last line of its reference, as a grounded answer would repeat a fact.
    reference = re.split(r"\n\n(?:Ground every|The reference above)", text.split("Reference:", 1)[-1])[0].strip().splitlines()
    fact = reference[-1].strip() if reference else ""
    if "polite refusal or hand-off" in text:
        return f"Sorry, that is outside what I can help with. I can tell you this: {fact}"
    invented = f" {INVENTED}" if inventing and digest[2] % 3 == 0 else ""  # a third of the answers
    return f"Thanks for asking. {fact}{invented}"


def _logprobs(text: str, k: int) -> dict:
    tokens = [w + " " for w in text.split(" ")]
    return {"content": [
        {"token": t, "logprob": -0.1, "bytes": list(t.encode()),
         "top_logprobs": [{"token": t, "logprob": -0.1, "bytes": list(t.encode())}] + [
             {"token": f"alt{j}", "logprob": -3.0 - j, "bytes": list(f"alt{j}".encode())} for j in range(k - 1)]}
        for t in tokens
    ]}  # fmt: skip


class _Handler(BaseHTTPRequestHandler):
    delay = 0.0
    malformed_judge = False
    refusing = False
    inventing = False
    guessing = False
    served = 0
    lock = threading.Lock()

    def log_message(self, *args: object) -> None:  # quiet: a benchmark prints its own figures
        pass

    def do_GET(self) -> None:  # /v1/models, for clients that look before they ask
        self._send({"object": "list", "data": [{"id": "canned", "object": "model"}]})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
        time.sleep(self.delay)
        text = canned_reply(body.get("messages", []), body.get("seed"), self.malformed_judge, self.refusing, self.inventing, self.guessing)
        words = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
        with self.lock:
            type(self).served += 1
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        if body.get("logprobs"):
            choice["logprobs"] = _logprobs(text, int(body.get("top_logprobs") or 1))
        self._send({
            "id": "chatcmpl-canned", "object": "chat.completion", "created": int(time.time()), "model": "canned",
            "choices": [choice],
            "usage": {"prompt_tokens": words, "completion_tokens": len(text.split()), "total_tokens": words + len(text.split())},
        })  # fmt: skip

    def _send(self, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # the default backlog (5) refuses connections at high concurrency


def start(port: int = 0, delay: float = 0.0, malformed_judge: bool = False, refusing: bool = False,
          inventing: bool = False, guessing: bool = False) -> tuple[ThreadingHTTPServer, str]:  # fmt: skip
    """Serve in a background thread; returns the server (call .shutdown()) and its /v1 base URL."""
    handler = type("Handler", (_Handler,), {"delay": delay, "malformed_judge": malformed_judge, "refusing": refusing,
                                            "inventing": inventing, "guessing": guessing, "served": 0})  # fmt: skip
    server = _Server(("127.0.0.1", port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/v1"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--delay", type=float, default=0.3, help="seconds per answer")
    parser.add_argument("--malformed-judge", action="store_true", help="first judge answer has no JSON")
    args = parser.parse_args()
    server, url = start(args.port, args.delay, args.malformed_judge)
    print(f"canned endpoint at {url} ({args.delay * 1000:.0f} ms per answer); Ctrl-C stops it", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.shutdown()
