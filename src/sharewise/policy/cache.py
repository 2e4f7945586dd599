"""A compiled-pack cache, so a command does not re-parse and re-validate unchanged law files.

The cache key covers the content of every pack file and the source of the modules whose
classes are pickled, so any change to either reads the YAML again. The cache directory
must belong to the current user and be writable by no one else; otherwise it is ignored.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import stat
import tempfile
from pathlib import Path

from sharewise.policy.model import LawPack
from sharewise.policy.packfiles import FEDERAL_PACK, hash_files

_PICKLED_MODULES = ("model.py", "condition.py", "load.py")


def _code_digest() -> str:
    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for name in _PICKLED_MODULES:
        digest.update((here / name).read_bytes())
    digest.update((here.parent / "domain" / "determination.py").read_bytes())
    return digest.hexdigest()[:16]


def _safe_dir(path: Path) -> bool:
    try:
        info = path.stat()
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o022


def load_law_cached(state_pack: Path | None, cache_dir: Path | None) -> LawPack:
    """Load the law pack, from the cache when an identical compiled pack is there."""
    from sharewise.policy.load import load_law

    if cache_dir is None:
        return load_law(state_pack)
    roots = [FEDERAL_PACK, *([state_pack] if state_pack else [])]
    if not all(r.is_dir() for r in roots):
        return load_law(state_pack)  # reports the missing directory
    key = f"law-{_code_digest()}-{hash_files(roots)[:32]}.pickle"
    cached = cache_dir / key
    if _safe_dir(cache_dir) and cached.is_file():
        try:
            with cached.open("rb") as handle:
                law = pickle.load(handle)
            if isinstance(law, LawPack):
                return law
        except Exception:  # a stale or damaged cache entry is simply rebuilt
            pass
    law = load_law(state_pack)
    _store(cache_dir, cached, law)
    return law


def _store(cache_dir: Path, target: Path, law: LawPack) -> None:
    try:
        cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _safe_dir(cache_dir):
            return
        for old in cache_dir.glob("law-*.pickle"):
            old.unlink(missing_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".law-", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            pickle.dump(law, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, target)
    except OSError:
        return  # the cache is an optimisation; failing to write it is not an error
