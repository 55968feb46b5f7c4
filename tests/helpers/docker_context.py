"""The build context `make docker-build` sends, worked out by the Docker SDK's own
.dockerignore implementation (no Docker engine needed)."""

from __future__ import annotations

from pathlib import Path

from docker.utils.build import exclude_paths

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE_IN_CONTEXT = "docker/Dockerfile"   # `docker build -f` of make


def ignore_patterns(folder: Path) -> list[str]:
    """The patterns of folder/.dockerignore, read as docker.APIClient.build reads them."""
    path = folder / ".dockerignore"
    if not path.exists():
        return []
    lines = [line.strip() for line in path.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def build_context(folder: Path) -> set[str]:
    """The files `docker build -f docker/Dockerfile folder` lets COPY see (posix, relative).

    docker.utils.build.exclude_paths is what the SDK tars up and sends. That always includes
    .dockerignore and the Dockerfile, which the daemon reads and then drops from the context
    when .dockerignore excludes them (ours does, with `*`); they are left out here.
    """
    sent = exclude_paths(str(folder), ignore_patterns(folder), dockerfile=DOCKERFILE_IN_CONTEXT)
    return {p for p in sent if (folder / p).is_file()} - {".dockerignore", DOCKERFILE_IN_CONTEXT}


