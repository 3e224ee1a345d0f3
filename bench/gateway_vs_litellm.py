"""Gateway overhead: `protege serve` against LiteLLM's proxy, both in front of the same upstream.

The upstream is a tiny OpenAI-compatible ASGI app under uvicorn (`--upstream PORT` runs it) that
answers at once with keep-alive, so what is measured is what each gateway adds: parsing, auth,
routing, logging, the upstream call, the reply.

    python bench/gateway_vs_litellm.py [--quick] [--json PATH]   # LiteLLM from .bench-venv-litellm
    make bench-peers                                             # installs it there

Each gateway runs as its own process with its defaults and an API key (protege: a key from
`protege keys create`, rule-layer guard, traffic log in SQLite, metrics, and the teacher's
retrieval over the bike shop's docs, on by default, and once more with it off; LiteLLM: a master
key, no database). Sequential requests, sent to each in rotation, give the latency
(added = gateway minus direct upstream, at p50 and p99), then concurrent clients give the most
requests per second. Rounds alternate between the two and the best round of each is kept, since
the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import record
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "examples" / "riverbend-bikes" / "docs"
LITELLM = ROOT / ".bench-venv-litellm" / "bin" / "litellm"
# protege as it ships (the teacher's prompt gets the top chunks of the owner's docs), and with that
# retrieval off: the same work as LiteLLM, which only forwards.
GATEWAYS = {"protege": True, "protege-no-retrieval": False}
# The defaults send every request to the student (no router is trained), whose prompt needs no
# retrieval; this target asks the first gateway's teacher by name, so each request embeds the
# question and carries the excerpts: the cost a routed request pays when it goes to the teacher.
TEACHER_ROUTE = "protege-teacher-route"
# What each target is answered as: its model name in the request body.
MODEL = {TEACHER_ROUTE: "canned-teacher"}
BODY = {"model": "canned", "messages": [{"role": "user", "content": "What are your opening hours?"}], "max_tokens": 16}


def free_port() -> int:
    from protege.models.server import free_port as pick

    return pick()


def wait_ready(url: str, proc: subprocess.Popen, what: str, log: Path, timeout: float = 180) -> None:
    """Wait for a started server to answer; exit with the end of its log if it died or hung."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-10:])
            sys.exit(f"{what} exited at start (code {proc.returncode}); the end of {log}:\n{tail}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    sys.exit(f"{what} not ready after {timeout:.0f}s")


REPLY = json.dumps({
    "id": "chatcmpl-upstream", "object": "chat.completion", "created": 0, "model": "canned",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "We open at 9:00 on weekdays."},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20},
}).encode()  # fmt: skip
MODELS = json.dumps({"object": "list", "data": [{"id": "canned", "object": "model", "owned_by": "bench"}]}).encode()


async def upstream_app(scope: dict, receive, send) -> None:  # noqa: ANN001
    """The fast upstream: drains the request, answers one fixed completion (or the model list)."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    body = MODELS if scope["method"] == "GET" else REPLY
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


def start_upstream(logs: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = logs / "upstream.log"
    proc = subprocess.Popen([sys.executable, __file__, "--upstream", str(port)], stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    wait_ready(f"{url}/models", proc, "canned upstream", log)
    return proc, url


def start_protege(upstream: str, work: Path, name: str, teacher_retrieval: bool) -> tuple[subprocess.Popen, str, str]:
    """`protege serve` with its defaults over the canned upstream; teacher retrieval as told."""
    project = work / name
    shutil.copytree(DOCS, project / "docs")  # serve needs documents, whatever the retrieval setting
    model = {"ref": f"openai:canned@{upstream}", "concurrency": 256, "max_retries": 0}
    config = {"name": "canned", "student": model, "teacher": model,
              "serve": {"rate_limit_per_minute": 10_000_000, "max_queue": 1024, "teacher_retrieval": teacher_retrieval}}  # fmt: skip
    (project / "protege.yaml").write_text(yaml.safe_dump(config))
    from protege.serve.keys import KeyStore

    key, _ = KeyStore(project / "artifacts" / "keys.db").create("bench")
    port = free_port()
    log = work / f"{name}.log"
    proc = subprocess.Popen([sys.executable, "-m", "protege.cli", "serve", str(project), "--port", str(port)],
                            stdout=log.open("w"), stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    wait_ready(f"http://127.0.0.1:{port}/health", proc, "protege serve", log)
    return proc, url, key


def litellm_version() -> str | None:
    """LiteLLM's version in its venv, or None when it is not installed there."""
    if not LITELLM.is_file():
        return None
    python = LITELLM.parent / "python"
    done = subprocess.run([str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
                          capture_output=True, text=True)  # fmt: skip
    return done.stdout.strip() or None


def start_litellm(upstream: str, work: Path) -> tuple[subprocess.Popen, str, str]:
    config = {"model_list": [{"model_name": "canned",
                              "litellm_params": {"model": "openai/canned", "api_base": upstream, "api_key": "sk-bench"}}],
              "litellm_settings": {"telemetry": False, "drop_params": True}}  # fmt: skip
    cfg = work / "litellm.yaml"
    cfg.write_text(yaml.safe_dump(config))
    port = free_port()
    key = "sk-" + secrets.token_hex(32)
    env = {**os.environ, "LITELLM_LOG": "ERROR", "LITELLM_MODE": "PRODUCTION", "LITELLM_MASTER_KEY": key}
    log = work / "litellm.log"
    proc = subprocess.Popen([str(LITELLM), "--config", str(cfg), "--port", str(port), "--num_workers", "1"],
                            stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    wait_ready(f"http://127.0.0.1:{port}/health/liveliness", proc, "litellm proxy", log)
    return proc, url, key


async def latencies(targets: dict[str, tuple[str, str]], n: int) -> dict[str, list[float]]:
    """n rotations of one request to each target in turn (so machine noise hits all alike); seconds."""
    clients = {name: httpx.AsyncClient(timeout=30, headers={"authorization": f"Bearer {key}"})
               for name, (_, key) in targets.items()}  # fmt: skip
    out: dict[str, list[float]] = {name: [] for name in targets}
    try:
        for i in range(n + 5):  # the first 5 warm up connections and lazy imports
            for name, (url, _) in targets.items():
                t0 = time.perf_counter()
                resp = await clients[name].post(f"{url}/chat/completions", json=body_for(name))
                if i >= 5:
                    out[name].append(time.perf_counter() - t0)
                resp.raise_for_status()
    finally:
        for client in clients.values():
            await client.aclose()
    return out


def body_for(target: str) -> dict:
    return {**BODY, "model": MODEL.get(target, BODY["model"])}


async def throughput(url: str, key: str, n: int, clients: int, body: dict) -> tuple[float, int]:
    """(requests/s, failures) for n requests from `clients` concurrent clients."""
    remaining = iter(range(n))
    failures = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal failures
        for _ in remaining:
            resp = await client.post(f"{url}/chat/completions", json=body)
            failures += resp.status_code != 200

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=60, limits=limits, headers={"authorization": f"Bearer {key}"}) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(clients)))
        return n / (time.perf_counter() - t0), failures


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if q < 100 else max(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="sequential requests per latency round")
    parser.add_argument("--load", type=int, default=1000, help="requests per throughput round")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients for throughput")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--upstream", type=int, metavar="PORT", help="only run the fast upstream on PORT")
    args = record.parse(parser, quick={"requests": 40, "load": 200, "clients": 8, "rounds": 1})
    if args.upstream:
        import uvicorn

        uvicorn.run(upstream_app, host="127.0.0.1", port=args.upstream, log_level="warning", access_log=False)
        return
    with record.BenchRun("gateway_vs_litellm", args) as run:
        version = litellm_version()
        if version is None:
            run.peer_missing("LiteLLM proxy", f"not installed at {LITELLM} (make bench-peers installs it)")
        best = measure(args, with_litellm=version is not None)
        report(run, best, args, f"LiteLLM {version} proxy")


def measure(args: argparse.Namespace, with_litellm: bool) -> dict[str, dict[str, float]]:
    """Best round of each target: p50/p99 latency (s), requests/s, failed requests."""
    work = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    procs = []
    try:
        upstream_proc, upstream = start_upstream(work)
        procs.append(upstream_proc)
        targets = {"direct": (upstream, "none")}
        for name, retrieval in GATEWAYS.items():
            proc, url, key = start_protege(upstream, work, name, retrieval)
            procs.append(proc)
            targets[name] = (url, key)
        targets[TEACHER_ROUTE] = targets["protege"]
        if with_litellm:
            litellm_proc, litellm_url, litellm_key = start_litellm(upstream, work)
            procs.append(litellm_proc)
            targets["litellm"] = (litellm_url, litellm_key)
        best: dict[str, dict[str, float]] = {k: {"p50": 1e9, "p99": 1e9, "rps": 0.0, "failed": 0} for k in targets}
        for r in range(args.rounds):
            lats = asyncio.run(latencies(targets, args.requests))
            for name, (url, key) in targets.items():
                lat = lats[name]
                rps, failed = asyncio.run(throughput(url, key, args.load, args.clients, body_for(name)))
                b = best[name]
                b["p50"], b["p99"] = min(b["p50"], pct(lat, 50)), min(b["p99"], pct(lat, 99))
                b["rps"], b["failed"] = max(b["rps"], rps), b["failed"] + failed
                print(f"round {r + 1} {name:22s} p50 {pct(lat, 50) * 1e3:7.2f} ms  p99 {pct(lat, 99) * 1e3:7.2f} ms  "
                      f"{rps:7.0f} req/s  failed {failed}", flush=True)  # fmt: skip
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
    print(f"logs in {work}")
    return best


def report(run: record.BenchRun, best: dict[str, dict[str, float]], args: argparse.Namespace, peer: str) -> None:
    d = best["direct"]
    setup = (f"{args.requests} sequential requests to each in rotation, then {args.load} from {args.clients} "
             f"clients; best of {args.rounds} rounds; {os.cpu_count()} CPU cores shared by client, upstream and gateway")  # fmt: skip
    print(f"\nupstream alone: p50 {d['p50'] * 1e3:.2f} ms, p99 {d['p99'] * 1e3:.2f} ms, {d['rps']:.0f} req/s ({setup})")
    print(f"{'gateway':22s} {'added p50':>10s} {'added p99':>10s} {'max req/s':>10s} {'failed':>7s}")
    added = {}
    for name in [n for n in best if n != "direct"]:
        b = best[name]
        added[name] = (b["p50"] - d["p50"], b["p99"] - d["p99"])
        print(f"{name:22s} {added[name][0] * 1e3:8.2f}ms {added[name][1] * 1e3:8.2f}ms {b['rps']:10.0f} {int(b['failed']):7d}")
    run.note(f"Upstream alone: p50 {d['p50'] * 1e3:.2f} ms, p99 {d['p99'] * 1e3:.2f} ms, {d['rps']:.0f} req/s ({setup}).")
    run.note("Added latency is the gateway's minus the upstream's alone. protege runs with its defaults: API key, "
             "rule-layer guard, SQLite traffic log, metrics, and teacher retrieval over the bike shop's 16 pages "
             "(the query embedded, the top chunks added to the prompt, when the teacher is asked); once more "
             "with that retrieval off, which leaves it the work LiteLLM does. With no router trained, the defaults "
             f"send every request to the student, whose prompt needs no retrieval; `{TEACHER_ROUTE}` asks the "
             "same gateway's teacher by name (model `canned-teacher`), so every request pays the embedding.")  # fmt: skip
    failed = {name: int(b["failed"]) for name, b in best.items() if b["failed"]}
    if failed:
        run.note(f"Failed requests (non-200) under load: {failed}.")
    if "litellm" not in best:
        return
    lt = best["litellm"]
    which_of = {"protege": "defaults", "protege-no-retrieval": "teacher retrieval off", TEACHER_ROUTE: "teacher route, retrieval on"}
    for name, which in which_of.items():
        p = best[name]
        for q, i in (("p50", 0), ("p99", 1)):
            run.compare(f"added latency {q}, {which}", ours=added[name][i] * 1e3, peer=added["litellm"][i] * 1e3,
                        peer_name=peer, unit="ms", better="lower")  # fmt: skip
        run.compare(f"throughput, {args.clients} clients, {which}", ours=p["rps"], peer=lt["rps"], peer_name=peer,
                    unit="req/s", better="higher")  # fmt: skip


if __name__ == "__main__":
    main()
