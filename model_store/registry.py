"""Versioned model artifacts on disk: ``root/<name>/<version>/{weights.pt, manifest.json}``.

A version is immutable once saved (only its metrics may be updated). The manifest says what the
weights are (architecture, config), what they were trained on (data), how well they do (metrics),
what they came from (parents, as ``name@version`` refs), how to feed them (preprocess), the sha256
of every file, and the exact command that reproduces them. Loading verifies the digests and
refuses a mismatch or a missing file with an error naming the path and both digests.

Float tensors are stored in fp16 by default (``half=True``): Lite0 weights and BN statistics lie
far inside fp16's range, and the embeddings of a half-stored model match the fp32 one to ~1e-3
cosine. A tensor that would overflow fp16 is kept in fp32. ``load_state`` returns fp32.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

DEFAULT_ROOT = Path(__file__).resolve().parent / "artifacts"
WEIGHTS_FILE = "weights.pt"
MANIFEST_FILE = "manifest.json"
_FP16_MAX = 65504.0
_FIELDS = ("kind", "architecture", "config", "data", "metrics", "parents", "preprocess", "command", "extra")


class RegistryError(Exception):
    """Base class of model-registry errors."""


class ArtifactMissingError(RegistryError, FileNotFoundError):
    """A version, its manifest or one of its files is not on disk."""


class ChecksumMismatchError(RegistryError):
    """A file's sha256 differs from the one its manifest recorded."""

    def __init__(self, path: Path, expected: str, actual: str) -> None:
        super().__init__(f"checksum mismatch for {path}: manifest expects sha256 {expected}, file has {actual}")
        self.path, self.expected, self.actual = path, expected, actual


@dataclass(frozen=True)
class Manifest:
    """What a stored version is, where it came from and how to reproduce it."""

    name: str
    version: str
    kind: str = ""
    architecture: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    parents: list[str] = field(default_factory=list)
    preprocess: dict[str, Any] | None = None
    files: dict[str, str] = field(default_factory=dict)
    command: str = ""
    created_at: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Manifest:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def parse_ref(ref: str) -> tuple[str, str | None]:
    """``name@version`` -> (name, version); a bare ``name`` means its latest version (None)."""
    name, sep, version = ref.partition("@")
    if not name or (sep and not version) or "/" in ref or ".." in ref:
        raise ValueError(f"bad model reference {ref!r}; expected 'name@version' or 'name'")
    return name, version or None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _version_key(version: str) -> tuple[int, int | str]:
    return (0, int(version)) if version.isdigit() else (1, version)


def _to_storage(state: Mapping[str, torch.Tensor], half: bool) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        t = tensor.detach().to("cpu").contiguous()
        fits = t.numel() == 0 or float(t.abs().max()) < _FP16_MAX
        if half and t.is_floating_point() and t.dtype != torch.float16 and fits:
            t = t.to(torch.float16)
        out[key] = t.clone()
    return out


def _check_files(manifest: Manifest, directory: Path, names: list[str] | None = None) -> None:
    """Each of ``names`` (all the manifest's files if None) is in ``directory`` with its recorded sha256."""
    for name in sorted(manifest.files) if names is None else names:
        expected = manifest.files.get(name)
        path = directory / name
        if expected is None:
            raise ArtifactMissingError(f"{manifest.ref}: {directory / MANIFEST_FILE} lists no {name!r}")
        if not path.is_file():
            raise ArtifactMissingError(f"{manifest.ref}: file {path} is missing (manifest expects sha256 {expected})")
        actual = sha256_file(path)
        if actual != expected:
            raise ChecksumMismatchError(path, expected, actual)


class ModelRegistry:
    """Save, list and load versioned artifacts below ``root``."""

    def __init__(self, root: Path = DEFAULT_ROOT) -> None:
        self.root = Path(root)

    def version_dir(self, ref: str) -> Path:
        name, version = parse_ref(ref)
        if version is None:
            version = self.latest_version(name)
        return self.root / name / version

    def versions(self, name: str) -> list[str]:
        base = self.root / name
        if not base.is_dir():
            return []
        found = [p.name for p in base.iterdir() if not p.name.startswith(".") and (p / MANIFEST_FILE).is_file()]
        return sorted(found, key=_version_key)

    def latest_version(self, name: str) -> str:
        found = self.versions(name)
        if not found:
            raise ArtifactMissingError(f"no versions of model {name!r} under {self.root}")
        return found[-1]

    def exists(self, ref: str) -> bool:
        try:
            return (self.version_dir(ref) / MANIFEST_FILE).is_file()
        except (ArtifactMissingError, ValueError):
            return False

    def save(
        self,
        name: str,
        version: str,
        state: Mapping[str, torch.Tensor],
        manifest_fields: Mapping[str, Any],
        half: bool = True,
        overwrite: bool = False,
        extra_files: Mapping[str, Path] | None = None,
    ) -> Manifest:
        """Write ``weights.pt`` (+ ``extra_files`` copied by name) and ``manifest.json`` atomically."""
        parse_ref(f"{name}@{version}")
        unknown = set(manifest_fields) - set(_FIELDS)
        if unknown:
            raise ValueError(f"unknown manifest fields {sorted(unknown)}; allowed: {', '.join(_FIELDS)}")
        target = self.root / name / version
        if target.exists() and not overwrite:
            raise RegistryError(f"{name}@{version} exists at {target}; pass overwrite=True to replace")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=target.parent))
        try:
            torch.save(_to_storage(state, half), staging / WEIGHTS_FILE)
            for filename, source in (extra_files or {}).items():
                shutil.copyfile(source, staging / filename)
            files = {p.name: sha256_file(p) for p in sorted(staging.iterdir())}
            fields = dict(manifest_fields)
            preprocess = fields.get("preprocess")
            if preprocess is not None and hasattr(preprocess, "to_dict"):
                fields["preprocess"] = preprocess.to_dict()
            fields.setdefault("extra", {})
            fields["extra"] = {**fields["extra"], "stored_dtype": "float16" if half else "as-is"}
            manifest = Manifest(
                name=name,
                version=version,
                files=files,
                created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                **fields,
            )
            self._write_manifest(staging, manifest)
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return manifest

    @staticmethod
    def _write_manifest(directory: Path, manifest: Manifest) -> None:
        tmp = directory / (MANIFEST_FILE + ".tmp")
        tmp.write_text(json.dumps(manifest.to_dict(), indent=2, sort_keys=True) + "\n")
        os.replace(tmp, directory / MANIFEST_FILE)

    def load_manifest(self, ref: str) -> Manifest:
        path = self.version_dir(ref) / MANIFEST_FILE
        if not path.is_file():
            raise ArtifactMissingError(f"model {ref!r} not found: no manifest at {path}")
        return Manifest.from_dict(json.loads(path.read_text()))

    def verify(self, ref: str, filename: str | None = None) -> Manifest:
        """Check the sha256 of ``filename`` (all files if None) against the manifest."""
        manifest = self.load_manifest(ref)
        _check_files(manifest, self.version_dir(ref), [filename] if filename is not None else None)
        return manifest

    def load_state(self, ref: str, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
        """Verified state dict; floating tensors cast to ``dtype``."""
        self.verify(ref, WEIGHTS_FILE)
        path = self.version_dir(ref) / WEIGHTS_FILE
        state = torch.load(path, map_location="cpu", weights_only=True)
        return {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}

    def list(self) -> list[Manifest]:
        if not self.root.is_dir():
            return []
        out = []
        for name_dir in sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            out.extend(self.load_manifest(f"{name_dir.name}@{v}") for v in self.versions(name_dir.name))
        return out

    def update_metrics(self, ref: str, metrics: Mapping[str, Any]) -> Manifest:
        """Merge ``metrics`` into the manifest (weights and digests are untouched)."""
        manifest = self.load_manifest(ref)
        updated = dataclasses.replace(manifest, metrics={**manifest.metrics, **dict(metrics)})
        self._write_manifest(self.version_dir(ref), updated)
        return updated

    def attach(self, ref: str, path: Path, name: str | None = None) -> Manifest:
        """Copy a file (a report, say) into a version and record its sha256; weights stay untouched."""
        manifest = self.verify(ref)
        name = name or Path(path).name
        if name in (WEIGHTS_FILE, MANIFEST_FILE):
            raise RegistryError(f"{name!r} cannot be attached to {ref}")
        target = self.version_dir(ref) / name
        shutil.copyfile(path, target)
        updated = dataclasses.replace(manifest, files={**manifest.files, name: sha256_file(target)})
        self._write_manifest(self.version_dir(ref), updated)
        return updated

    def import_version(self, source: ModelRegistry, ref: str) -> tuple[Manifest, bool]:
        """Copy a version from ``source`` (a training run's registry, say) as it is, digests checked.

        Versions are immutable, so an identical copy already here is left alone (returns False) and a
        different one under the same ``name@version`` is refused: a served model never changes under
        its own name. The copy lands atomically and is verified again after the copy.
        """
        manifest = source.verify(ref)
        target = self.root / manifest.name / manifest.version
        if target.exists():
            present = self.load_manifest(manifest.ref)
            if present.files != manifest.files:
                raise RegistryError(
                    f"{manifest.ref} already exists at {target} with other files; versions are immutable, "
                    "so train or save the new one under a new version"
                )
            self.verify(manifest.ref)
            return present, False
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{manifest.version}-", dir=target.parent))
        try:
            origin = source.version_dir(manifest.ref)
            for filename in (*manifest.files, MANIFEST_FILE):
                shutil.copyfile(origin / filename, staging / filename)
            _check_files(manifest, staging)  # the source may have changed mid-copy
            os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return manifest, True

    def missing_parents(self, manifest: Manifest) -> list[str]:
        """Parents (teachers, init checkpoints) that this registry does not hold: lineage only on record."""
        return [ref for ref in manifest.parents if not self.exists(ref)]

    def total_bytes(self, refs: list[str] | None = None) -> int:
        """Bytes of the stored files of ``refs`` (all versions if None)."""
        manifests = self.list() if refs is None else [self.load_manifest(r) for r in refs]
        return sum((self.version_dir(m.ref) / f).stat().st_size for m in manifests for f in m.files)
