"""The upstream bubus venv (``benchmarks/.venv-upstream``), created on first use.

Upstream's pydantic stack lives in its own venv so it never mixes with ours. ``pip install bubus``
resolves to the newest installable release (1.5.x: 1.6.0 is yanked).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-upstream"
PYTHON = VENV / "bin" / "python"
REQUIREMENT = "bubus<1.6"


def _run(*args: str | Path, timeout: float = 600) -> str:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, check=True)
    return done.stdout.strip()


def installed_version() -> str | None:
    """The bubus version in the upstream venv, or None when it is not usable."""
    if not PYTHON.exists():
        return None
    try:
        return _run(PYTHON, "-c", "import importlib.metadata as m; print(m.version('bubus'))", timeout=60)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return None


def ensure() -> str | None:
    """Create the venv and install upstream bubus if needed. Returns its version, or None on failure."""
    version = installed_version()
    if version is not None:
        return version
    print(f"[setup] creating {VENV.relative_to(HERE.parent)} with {REQUIREMENT} ...", flush=True)
    try:
        if not PYTHON.exists():
            _run(sys.executable, "-m", "venv", VENV)
        _run(PYTHON, "-m", "pip", "install", "-q", "--disable-pip-version-check", REQUIREMENT)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        stderr = getattr(exc, "stderr", "") or ""
        print(f"[setup] could not install upstream bubus: {exc}\n{stderr[-2000:]}", flush=True)
        return None
    return installed_version()


def versions() -> dict[str, str]:
    """bubus and pydantic versions in the upstream venv (empty when it is missing)."""
    if not PYTHON.exists():
        return {}
    code = (
        "import importlib.metadata as m, json; "
        "print(json.dumps({p: m.version(p) for p in ('bubus', 'pydantic')}))"
    )
    try:
        import json

        return dict(json.loads(_run(PYTHON, "-c", code, timeout=60)))
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, ValueError):
        return {}
