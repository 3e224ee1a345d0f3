"""persona.md: written by protege, then the owner's; regenerated only if untouched and stale."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import yaml

from protege.config import ModelConfig
from protege.corpus import load_corpus
from protege.models.endpoint import open_client
from protege.project import Project
from protege.synth.persona import pending_call, resolve_persona, voice_sample


def resolve(project_dir: Path, url: str):
    project = Project.load(project_dir)

    async def go():
        async with open_client(ModelConfig(ref=f"openai:canned@{url}", max_retries=0), cache_path=project.paths.cache_db) as t:
            return await resolve_persona(project, load_corpus(project), t)

    return asyncio.run(go())


def add_posts(project_dir: Path, texts: list[str]) -> None:
    (project_dir / "docs" / "posts.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))


def test_default_prompt_names_the_project_and_is_written_once(project_dir: Path, endpoint) -> None:
    server, url = endpoint
    p = resolve(project_dir, url)
    assert p.source == "default" and "You are the assistant of proj" in p.text
    assert (project_dir / "artifacts/data/persona.md").read_text().strip() == p.text
    assert resolve(project_dir, url).source == "unchanged"
    assert server.RequestHandlerClass.served == 0  # no teacher call for a default prompt


def test_voice_profile_from_posts_then_owner_edits_are_kept(project_dir: Path, endpoint) -> None:
    server, url = endpoint
    add_posts(project_dir, ["Low and slow, friends.", "Pantry math: $4 for six bowls. - M."])
    project = Project.load(project_dir)
    assert "Low and slow, friends." in pending_call(project, load_corpus(project))
    p = resolve(project_dir, url)
    assert p.source == "generated" and p.text.startswith("You are the creator.")
    path = project_dir / "artifacts/data/persona.md"

    add_posts(project_dir, ["Low and slow, friends.", "A new post changes the inputs."])
    assert resolve(project_dir, url).source == "generated"  # untouched + stale: rewritten

    path.write_text("You are Maya. Edited by hand.\n")
    add_posts(project_dir, ["Yet another post."])
    project = Project.load(project_dir)
    assert pending_call(project, load_corpus(project)) is None
    p = resolve(project_dir, url)
    assert p.source == "edited by owner" and p.text == "You are Maya. Edited by hand."
    assert path.read_text() == "You are Maya. Edited by hand.\n"


def test_config_persona_wins_and_file_is_not_touched(project_dir: Path, endpoint) -> None:
    _, url = endpoint
    cfg = project_dir / "protege.yaml"
    data = yaml.safe_load(cfg.read_text())
    data["persona"] = "You are Riverbend's helper."
    cfg.write_text(yaml.safe_dump(data))
    p = resolve(project_dir, url)
    assert (p.source, p.text) == ("config", "You are Riverbend's helper.")
    assert not (project_dir / "artifacts/data/persona.md").exists()


def test_voice_sample_fits_the_prompt_and_is_seeded() -> None:
    posts = [f"post {i} " + "word " * 40 for i in range(200)]
    sample = voice_sample(posts, seed=0)
    assert 10 < len(sample) < 200
    assert sample == voice_sample(posts, seed=0) != voice_sample(posts, seed=1)
    assert sample == sorted(sample, key=posts.index)  # in post order
