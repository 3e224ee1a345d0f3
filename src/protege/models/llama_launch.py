"""llama-cpp-python's OpenAI server, with the base model memory-mapped even under a LoRA adapter.

llama-cpp-python 0.3.36 switches mmap off whenever `lora_path` is given, a leftover from the days
llama.cpp merged adapters into the weights. llama.cpp now applies adapters at run time
(`llama_set_adapters_lora`), so the base can stay mapped: every agent served over one base GGUF
then shares one page-cached copy of it instead of holding its own (bench/serve_memory.py).

It also stops the server when the protege process that started it is gone, however that
process ended (kill -9 included). Not PR_SET_PDEATHSIG: the kernel sends that signal when the
*thread* that forked the child exits, and protege starts servers from worker threads
(asyncio.to_thread in the gateway and the stages), whose exit would kill a healthy server.

    python -m protege.models.llama_launch <the arguments of python -m llama_cpp.server>
"""

from __future__ import annotations

import ctypes
import os
import signal
import threading
import time

import llama_cpp
from llama_cpp import llama as _llama

_original_init = _llama.Llama.__init__


def _init_keeping_mmap(self, *args, lora_path: str | None = None, **kwargs) -> None:  # noqa: ANN001
    _original_init(self, *args, **kwargs)  # without lora_path, so mmap stays as configured
    if not lora_path:
        return
    adapter = llama_cpp.llama_adapter_lora_init(self._model.model, lora_path.encode("utf-8"))
    if adapter is None:
        raise RuntimeError(f"Failed to initialize LoRA adapter from lora path: {lora_path}")
    self._stack.callback(llama_cpp.llama_adapter_lora_free, adapter)
    self.lora_path, self._lora_adapter = lora_path, adapter
    adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(adapter)
    scales = (ctypes.c_float * 1)(self.lora_scale)
    if llama_cpp.llama_set_adapters_lora(self._ctx.ctx, adapters, 1, scales):
        raise RuntimeError(f"Failed to set LoRA adapter from lora path: {lora_path}")


_llama.Llama.__init__ = _init_keeping_mmap


def _stop_when_orphaned(parent: int, every_s: float = 0.5) -> None:
    """SIGTERM this process (uvicorn shuts down cleanly on it) once `parent` is no longer its parent."""
    while os.getppid() == parent:
        time.sleep(every_s)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(10)
    os._exit(1)  # uvicorn did not stop in time


if __name__ == "__main__":
    from llama_cpp.server.__main__ import main

    # The pool passes its pid: a parent that died before this line ran is then noticed too.
    parent = int(os.environ.get("PROTEGE_PARENT_PID") or os.getppid())
    threading.Thread(target=_stop_when_orphaned, args=(parent,), daemon=True).start()
    main()
