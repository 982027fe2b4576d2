"""Compiled trees: a LightGBM text model compiled to native code by lleaves (through LLVM), cached.

An entry of the cache is COMPILED_MODELS_DIR/{model sha256}/{toolchain key}-{object digest}.o.
The key names the lleaves and llvmlite versions and the CPU the code was compiled for (its
name, and a digest of its features and of the compile options), so a changed model, library
or CPU never meets an old object. LLVM aborts the whole process on a damaged object file, so
an entry is loaded only when its bytes still have the digest in its name; a damaged one is
removed and compiled again. Compiling runs in a child process (LLVM also aborts on its own
internal errors), which writes the object under a temporary name and renames it into place:
concurrent compiles of the same model never leave a partial file.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from importlib import metadata
from multiprocessing import get_context
from pathlib import Path

log = logging.getLogger(__name__)

# lleaves' defaults, in 64-bit floats: LightGBM compares and sums in doubles, so the scores
# stay within 1e-14 of its own (32-bit floats would move them by ~1e-6).
COMPILE_OPTIONS = {"fblocksize": 34, "fcodemodel": "large", "finline": True, "use_fp64": True}
DIGEST_CHARS = 32  # of the object's sha256, in its file name


class CompileError(Exception):
    """The compiled engine cannot serve a model (missing library, compile failure); says why."""


@functools.cache
def toolchain_key() -> str:
    """This process's compiler identity: lleaves and llvmlite versions, CPU name and features.

    Raises CompileError when lleaves or llvmlite cannot be imported or initialised.
    """
    try:
        import lleaves  # noqa: F401  (a broken install fails here, not mid-batch)
        import llvmlite.binding as llvm

        llvm.initialize()
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        cpu, features = llvm.get_host_cpu_name(), llvm.get_host_cpu_features().flatten()
        versions = f"lleaves-{metadata.version('lleaves')}_llvmlite-{metadata.version('llvmlite')}"
    except Exception as exc:  # ImportError, OSError of the LLVM library, API changes
        raise CompileError(f"lleaves/llvmlite unavailable ({type(exc).__name__}: {exc})") from exc
    detail = hashlib.sha256(f"{features}|{sorted(COMPILE_OPTIONS.items())}".encode()).hexdigest()
    return f"{versions}_{cpu}_{detail[:12]}"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:DIGEST_CHARS]


def _folder(cache_dir: Path | str, model_sha256: str) -> Path:
    return Path(cache_dir) / model_sha256


def cached_entry(cache_dir: Path | str, model_sha256: str, key: str) -> Path | None:
    """The model's intact cache entry for this toolchain, or None; damaged entries are removed.

    An entry is intact when its bytes have the digest its name carries.
    """
    folder = _folder(cache_dir, model_sha256)
    for entry in sorted(folder.glob(f"{key}-*.o")) if folder.is_dir() else ():
        try:
            intact = _digest(entry.read_bytes()) == entry.stem.rsplit("-", 1)[1]
        except OSError as exc:
            log.warning("compiled-model cache entry %s unreadable (%s): compiling again", entry, exc)
            continue
        if intact:
            return entry
        log.warning("compiled-model cache entry %s is damaged (its bytes do not match the digest "
                    "in its name): removing it and compiling again", entry)
        entry.unlink(missing_ok=True)
    return None


def _compile_to(model_path: str, folder: str, key: str) -> tuple[str, float]:
    """In a child process: compile the model, write the object under a temporary name in
    folder, rename it to its entry name. Returns (entry path, CPU seconds of the compile)."""
    import lleaves

    started = time.process_time()
    Path(folder).mkdir(parents=True, exist_ok=True)
    scratch = Path(folder) / f".tmp-{os.getpid()}-{uuid.uuid4().hex}.o"
    try:
        lleaves.Model(model_file=model_path).compile(cache=str(scratch), **COMPILE_OPTIONS)
        data = scratch.read_bytes()
        entry = Path(folder) / f"{key}-{_digest(data)}.o"
        os.replace(scratch, entry)  # atomic: a reader sees no entry or a whole one
    finally:
        scratch.unlink(missing_ok=True)
    return str(entry), time.process_time() - started


def compile_all(jobs: dict[str, tuple[Path, str]], cache_dir: Path | str) -> dict:
    """Compile models into the cache, each in a child process of its own, all at once.

    jobs maps a name to (model file, model sha256). Returns, per name, the new entry or the
    CompileError that says why there is none. One process per model: a compile that kills
    its process (LLVM aborts on internal errors) fails that model only.
    """
    key = toolchain_key()
    context = get_context("spawn")  # a fresh interpreter: no inherited threads or LLVM state
    pools = {name: ProcessPoolExecutor(max_workers=1, mp_context=context) for name in jobs}
    try:
        futures = {name: pools[name].submit(_compile_to, str(path), str(_folder(cache_dir, sha)),
                                            key)
                   for name, (path, sha) in jobs.items()}
        return {name: _outcome(jobs[name][0], future) for name, future in futures.items()}
    finally:
        for pool in pools.values():
            pool.shutdown()


def _outcome(model_path: Path, future) -> Path | CompileError:
    try:
        entry, seconds = future.result()
    except BrokenProcessPool as exc:
        return CompileError(f"the compiler process died ({exc})")
    except Exception as exc:  # lleaves' ValueError on an unsupported model, OSError, ...
        return CompileError(f"compile failed ({type(exc).__name__}: {exc})")
    log.info("compiled %s in %.1f CPU-s into %s", model_path, seconds, entry)
    return Path(entry)


def load(model_path: Path, entry: Path):
    """The compiled model (an lleaves.Model) from an intact cache entry; no compiling."""
    import lleaves

    forest = lleaves.Model(model_file=str(model_path))
    forest.compile(cache=str(entry), **COMPILE_OPTIONS)  # an existing cache file is only loaded
    return forest
