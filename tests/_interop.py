"""Where the JSON written by the real bubus runtimes lives: ``shared/interop`` beside the project.

One definition for every test that reads it, so a checkout laid out elsewhere (CI clones the project
into another folder, with ``shared/`` beside it) needs no edit.
"""

from pathlib import Path

_BESIDE = Path(__file__).resolve().parents[2] / "shared" / "interop"
INTEROP = _BESIDE if _BESIDE.is_dir() else Path("/work/shared/interop")
