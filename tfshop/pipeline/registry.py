"""The registry of pipeline stages: one entry per stage module, in pipeline order."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tfshop.pipeline.run import Run


@dataclass(frozen=True)
class Stage:
    """One stage: ``run(run)`` does it; ``output(run)`` is the path whose existence means it is
    done (None: it always runs); ``default``: in a config's stage list unless the config says."""

    name: str
    help: str
    run: Callable[[Run], None]
    output: Callable[[Run], Path | None]
    default: bool = True


STAGES: dict[str, Stage] = {}


def stage(
    name: str, help: str, output: Callable[[Run], Path | None] = lambda run: None, default: bool = True
):
    """Registers the decorated ``function(run)`` as stage ``name``."""

    def register(function: Callable[[Run], None]) -> Callable[[Run], None]:
        if name in STAGES:
            raise ValueError(f"stage {name!r} is registered twice")
        STAGES[name] = Stage(name, help, function, output, default)
        return function

    return register


def stages() -> dict[str, Stage]:
    """Every stage, in pipeline order (importing the stage modules registers them)."""
    import tfshop.pipeline.stages  # noqa: F401

    return STAGES


def default_stages() -> list[str]:
    return [name for name, s in stages().items() if s.default]
