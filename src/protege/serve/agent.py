"""One served project: its student and teacher endpoints, router, guard, persona and retrieval.

Everything that can be missing (a trained adapter, a router, the guard, documents) is optional;
what was missing is said once, in `notes`, which `protege serve` prints at start-up.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protege.config import ModelConfig
from protege.corpus.retrieve import Retriever
from protege.errors import ProtegeError
from protege.models.client import ChatClient
from protege.project import Project


def latest_adapter(project: Project) -> Path | None:
    """adapter.gguf of the run named in artifacts/models/LATEST, if there is one and it was trained
    for the project's student (a `protege run --quick` adapter is for the small student).

    A named run without its adapter is an error, as in eval: serving the base student in its
    place would hide a failed export."""
    from protege.train import trained_for

    run = project.paths.latest_run()
    if run is None:
        return None
    adapter = project.paths.model_run(run) / "adapter.gguf"
    if not adapter.is_file():
        raise ProtegeError(f"{adapter}: not found, but {project.paths.latest} names run '{run}'",
                           hint=f"the run did not finish its GGUF export: run `protege train {project.root}` again")  # fmt: skip
    return adapter if trained_for(adapter.parent) in (None, project.config.student.ref) else None


class Backend:
    """A chat endpoint. A local model's client finds its server per request, so a killed
    llama-server is restarted by the pool; `revive` only starts that restart early."""

    def __init__(self, label: str, model: ModelConfig, lora: Path | None = None):
        self.label = label
        self.model = model
        self.lora = lora
        self.client: ChatClient | None = None
        self._reviving: asyncio.Task | None = None

    @property
    def ref(self) -> str:
        return self.model.ref

    async def open(self) -> None:
        from protege.models.endpoint import open_client

        # No response cache: a gateway answers people, and their sampled answers must vary.
        self.client = await asyncio.to_thread(open_client, self.model, lora=self.lora)

    def revive(self) -> None:
        """After a failure: restart a dead local server in the background, before the next request."""
        local = self.client.local if self.client is not None else None
        if local is not None and (self._reviving is None or self._reviving.done()):
            self._reviving = asyncio.get_running_loop().create_task(self._restart(local))

    @staticmethod
    async def _restart(local: Any) -> None:
        try:
            await asyncio.to_thread(local.resolve)
        except ProtegeError:
            pass  # still down: the next request tries again, and says why

    async def close(self) -> None:
        if self._reviving is not None:
            self._reviving.cancel()
        if self.client is not None:
            await self.client.aclose()


@dataclass
class Agent:
    """A project as the gateway serves it, under the model names `name`, `name-student`, `name-teacher`."""

    project: Project
    student: Backend
    teacher: Backend
    persona: str
    router: Any = None
    guard: Any = None
    retriever: Retriever | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.project.name

    @property
    def model_names(self) -> list[str]:
        return [self.name, f"{self.name}-student", f"{self.name}-teacher"]

    async def close(self) -> None:
        await self.student.close()
        await self.teacher.close()
        if self.guard is not None:
            await self.guard.aclose()


def _load_router(project: Project, notes: list[str]) -> Any:
    router_dir = project.paths.router
    if not (router_dir / "router.json").is_file():
        notes.append(f"{project.name}: no router artifact in {router_dir}: every request goes to the student")
        return None
    from protege.route import load

    router = load(router_dir)
    notes.append(f"{project.name}: router from {router_dir}")
    return router


async def _load_guard(project: Project, notes: list[str]) -> Any:
    try:
        from protege.guard import Guard
    except ImportError:
        notes.append(f"{project.name}: protege.guard is not installed: serving WITHOUT moderation")
        return None
    guard = Guard.from_project(project)
    await guard.probe()
    notes.append(f"{project.name}: guard on (policy: {project.config.guard.policy})")
    return guard


async def load_agent(project: Project) -> Agent:
    """Open the student (with the latest adapter) and the teacher; load router, guard, retrieval."""
    notes: list[str] = []
    cfg = project.config
    adapter = latest_adapter(project)
    if adapter is None:
        notes.append(f"{project.name}: no trained run in {project.paths.models}: serving the BASE student {cfg.student.ref}")
    else:
        notes.append(f"{project.name}: student {cfg.student.ref} + adapter {adapter}")
    # The gateway falls back instead of retrying: a retry loop would only delay the other model.
    student_model = cfg.student.model_copy(update={"max_retries": 0, "timeout_s": cfg.serve.student_timeout_s})
    teacher_model = cfg.teacher.model_copy(update={"max_retries": min(cfg.teacher.max_retries, 1)})
    student = Backend("student", student_model, adapter)
    teacher = Backend("teacher", teacher_model)
    await student.open()
    try:
        await teacher.open()
    except ProtegeError as exc:
        notes.append(f"{project.name}: teacher unavailable ({exc}): the student answers everything")
    retriever = None
    if cfg.serve.retrieval or cfg.serve.teacher_retrieval:
        from protege.corpus import load_chunks

        retriever = await asyncio.to_thread(lambda: Retriever(load_chunks(project)))
        who = " and ".join(w for w, on in (("student", cfg.serve.retrieval), ("teacher", cfg.serve.teacher_retrieval)) if on)
        notes.append(f"{project.name}: retrieval for the {who} ({len(retriever.chunks)} chunks, top {cfg.serve.retrieval_k})")
    router = await asyncio.to_thread(_load_router, project, notes)
    guard = await _load_guard(project, notes)
    return Agent(project, student, teacher, project.system_prompt(), router, guard, retriever, notes)


async def load_agents(projects: list[Project]) -> list[Agent]:
    """Every project's agent. The students' adapters are declared to the server pool first, so
    the one llama-server per base starts with all of them, not restarted once per agent."""
    from protege.models.endpoint import server_spec
    from protege.refs import parse_ref
    from protege.models.server import POOL

    for project in projects:
        adapter = latest_adapter(project)
        if adapter is not None and parse_ref(project.config.student.ref).is_local_gguf:
            POOL.want(await asyncio.to_thread(server_spec, project.config.student, adapter))
    return list(await asyncio.gather(*(load_agent(p) for p in projects)))
