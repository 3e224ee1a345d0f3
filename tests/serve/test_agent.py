"""Which adapter the gateway serves: only one trained for the project's own student."""

import json

from protege.project import Project
from protege.serve.agent import latest_adapter


def test_an_adapter_trained_for_another_student_is_not_served(project_dir):
    project = Project.load(project_dir)
    run = project.paths.model_run("run-1")
    run.mkdir(parents=True)
    (run / "adapter.gguf").write_bytes(b"GGUF")
    (project.paths.models / "LATEST").write_text("run-1\n")
    assert latest_adapter(project) == run / "adapter.gguf"  # no run.json: nothing says otherwise
    (run / "run.json").write_text(json.dumps({"student": project.config.student.ref}))
    assert latest_adapter(project) == run / "adapter.gguf"
    (run / "run.json").write_text(json.dumps({"student": "embedded:smollm2-135m-instruct"}))  # a --quick run
    assert latest_adapter(project) is None
