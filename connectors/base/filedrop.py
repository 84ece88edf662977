"""A watched drop folder: which files are complete, which were seen, and where they go after.

Partners such as a tax authority deliver extracts by dropping files. The watcher polls (no
inotify: it must work on network shares and in containers) and only hands over a file that is
complete:

- with a manifest (``<stem>.manifest.json`` naming ``file_name`` and ``sha256``, as the tax
  mock writes last) or a ``<file>.sha256`` sidecar in ``sha256sum`` format: when the file's
  checksum matches. A file that stays different across two polls is truncated or corrupted
  and is rejected with that reason; one still growing is waited for.
- without either (unless ``require_manifest``): when its size and modification time did not
  change between two polls.

After handling, the file and its companions move to ``processed/`` or ``rejected/`` with a
``.report.json`` / ``.reason.json`` next to them that says what happened, so an operator can
fix and re-drop a rejected file. Content already processed (same SHA-256, remembered in the
database) is not ingested twice: the copy goes to ``rejected/`` marked as a duplicate.

``iter_lines`` streams a file line by line, so a million-row extract never sits in memory and
one badly encoded line becomes one rejected row, not a rejected file.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors.base.checkpoints import SeenFileStore
from connectors.base.clock import SYSTEM_CLOCK, Clock

log = logging.getLogger(__name__)

PROCESSED = "processed"
REJECTED = "rejected"
MANIFEST_SUFFIX = ".manifest.json"
SIDECAR_SUFFIX = ".sha256"
MAX_MANIFEST_BYTES = 64 * 1024
MAX_LINE_BYTES = 1024 * 1024
# Names a writer uses while a file is still being written; never picked up.
IN_PROGRESS_SUFFIXES = (".tmp", ".part", ".partial", ".filepart", ".crdownload")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")

# The settings block of a file connector (included in its settings schema).
DROP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["folder"],
    "properties": {
        "folder": {"type": "string", "minLength": 1},
        "patterns": {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
        "require_manifest": {"type": "boolean"},
        "poll_interval_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 86400},
    },
}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ReadyFile:
    """A complete file, ready to hand to the connector."""

    path: Path
    sha256: str
    size: int
    manifest: Mapping[str, Any] | None = None
    companions: tuple[Path, ...] = ()  # manifest and sidecar files that travel with it


@dataclass(frozen=True)
class Refusal:
    """A file (or manifest) found broken while scanning; to be moved to ``rejected/``."""

    path: Path
    reason: str
    companions: tuple[Path, ...] = ()
    sha256: str | None = None


@dataclass
class ScanResult:
    ready: list[ReadyFile] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # names not complete yet


@dataclass(frozen=True)
class FileLine:
    """One line of a dropped file: ``text`` without its line ending, or ``error`` if unreadable."""

    number: int
    text: str | None
    error: str | None = None


def iter_lines(
    path: Path, encoding: str = "utf-8", max_line_bytes: int = MAX_LINE_BYTES
) -> Iterator[FileLine]:
    """Yield the lines of ``path`` one at a time; undecodable or overlong lines carry an error.

    A UTF-8 byte-order mark at the start is dropped. Errors name the line and byte offset,
    never the content.
    """
    with path.open("rb") as handle:
        number = 0
        while True:
            raw = handle.readline(max_line_bytes + 1)
            if not raw:
                return
            number += 1
            if len(raw) > max_line_bytes and not raw.endswith(b"\n"):
                while raw and not raw.endswith(b"\n"):  # skip the rest of the line
                    raw = handle.readline(max_line_bytes + 1)
                yield FileLine(number, None, f"line longer than {max_line_bytes} bytes")
                continue
            if (
                number == 1
                and raw.startswith(b"\xef\xbb\xbf")
                and encoding.lower()
                in (
                    "utf-8",
                    "utf8",
                )
            ):
                raw = raw[3:]
            raw = raw.rstrip(b"\r\n")
            try:
                yield FileLine(number, raw.decode(encoding))
            except UnicodeDecodeError as exc:
                yield FileLine(number, None, f"not valid {encoding} (byte {exc.start + 1})")


def _read_manifest(path: Path) -> dict[str, Any]:
    """The manifest's content, or ValueError saying what is wrong with it."""
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise ValueError(f"manifest larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        manifest = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError):
        raise ValueError("manifest is not valid JSON") from None
    if not isinstance(manifest, dict):
        raise ValueError("manifest is not a JSON object")
    name = manifest.get("file_name")
    if not isinstance(name, str) or not _plain_name(name):
        raise ValueError("manifest file_name missing or not a plain file name")
    digest = manifest.get("sha256")
    if not isinstance(digest, str) or not _SHA256_RE.match(digest.lower()):
        raise ValueError("manifest sha256 missing or not 64 hex digits")
    size = manifest.get("size_bytes")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise ValueError("manifest size_bytes is not a non-negative integer")
    return manifest


def _plain_name(name: str) -> bool:
    """No folders, no parent references, no hidden files: a manifest cannot point elsewhere."""
    return (
        bool(name)
        and name == os.path.basename(name)
        and "\\" not in name
        and not name.startswith(".")
        and name not in (".", "..")
    )


def _read_sidecar(path: Path) -> str | None:
    """The digest in a ``sha256sum`` line, or None if unreadable."""
    try:
        text = path.read_text(encoding="ascii", errors="strict")[:1024]
    except (OSError, UnicodeDecodeError):
        return None
    first = text.strip().split()
    if first and _SHA256_RE.match(first[0].lower()):
        return first[0].lower()
    return None


class DropFolder:
    """Polls one folder; decides completeness; archives files after the connector is done."""

    def __init__(
        self,
        folder: Path | str,
        connector: str,
        seen: SeenFileStore,
        *,
        patterns: Sequence[str] = ("*",),
        require_manifest: bool = False,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.folder = Path(folder)
        self.connector = connector
        self.seen = seen
        self.patterns = tuple(patterns)
        self.require_manifest = require_manifest
        self.clock = clock
        self.processed_dir = self.folder / PROCESSED
        self.rejected_dir = self.folder / REJECTED
        for directory in (self.folder, self.processed_dir, self.rejected_dir):
            directory.mkdir(parents=True, exist_ok=True)
        # name -> (size, mtime_ns) at the previous scan: "unchanged across two polls"
        self._last: dict[str, tuple[int, int]] = {}

    # --- scanning ----------------------------------------------------------------------------

    def _entries(self) -> dict[str, os.stat_result]:
        found: dict[str, os.stat_result] = {}
        with os.scandir(self.folder) as listing:
            for entry in listing:
                name = entry.name
                if name.startswith(".") or name.lower().endswith(IN_PROGRESS_SUFFIXES):
                    continue
                if not entry.is_file(follow_symlinks=False):
                    continue  # folders (our archives) and symlinks are never followed
                found[name] = entry.stat(follow_symlinks=False)
        return found

    @staticmethod
    def _unchanged(name: str, stat: os.stat_result, previous: dict[str, tuple[int, int]]) -> bool:
        return previous.get(name) == (stat.st_size, stat.st_mtime_ns)

    def _is_data_name(self, name: str) -> bool:
        if name.endswith((MANIFEST_SUFFIX, SIDECAR_SUFFIX)) or name.endswith(
            (".reason.json", ".report.json")
        ):
            return False
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.patterns)

    def scan(self) -> ScanResult:
        """Classify what is in the folder now: ready, refused (broken), or still arriving."""
        entries = self._entries()
        previous, self._last = (
            self._last,
            {name: (stat.st_size, stat.st_mtime_ns) for name, stat in entries.items()},
        )
        result = ScanResult()
        expected: dict[str, tuple[dict[str, Any], Path]] = {}
        for name in sorted(entries):
            if not name.endswith(MANIFEST_SUFFIX):
                continue
            path = self.folder / name
            try:
                manifest = _read_manifest(path)
            except ValueError as problem:
                if self._unchanged(name, entries[name], previous):
                    result.refused.append(Refusal(path, f"invalid manifest: {problem}"))
                else:
                    result.waiting.append(name)  # may still be being written
                continue
            expected[manifest["file_name"]] = (manifest, path)

        for name in sorted(entries):
            if name not in expected and not self._is_data_name(name):
                continue
            stat = entries[name]
            path = self.folder / name
            sidecar = self.folder / f"{name}{SIDECAR_SUFFIX}"
            companions: list[Path] = [sidecar] if sidecar.name in entries else []
            manifest_entry = expected.pop(name, None)
            its_manifest: dict[str, Any] | None = manifest_entry[0] if manifest_entry else None
            if manifest_entry:
                companions.insert(0, manifest_entry[1])
            if its_manifest is None and self.require_manifest:
                result.waiting.append(name)  # a sidecar alone is not the promised manifest
                continue
            digest_expected = its_manifest["sha256"].lower() if its_manifest else None
            if digest_expected is None and sidecar.name in entries:
                digest_expected = _read_sidecar(sidecar)
            if digest_expected is None:
                if not self._unchanged(name, stat, previous):
                    result.waiting.append(name)
                    continue
                result.ready.append(
                    ReadyFile(path, sha256_of(path), stat.st_size, None, tuple(companions))
                )
                continue
            declared = its_manifest.get("size_bytes") if its_manifest else None
            unchanged = self._unchanged(name, stat, previous)
            if declared is not None and declared != stat.st_size and not unchanged:
                result.waiting.append(name)  # still arriving: no need to hash it yet
                continue
            digest = sha256_of(path)
            if digest == digest_expected:
                result.ready.append(
                    ReadyFile(path, digest, stat.st_size, its_manifest, tuple(companions))
                )
            elif unchanged:
                size_note = (
                    f"; {stat.st_size} of {declared} bytes present" if declared is not None else ""
                )
                result.refused.append(
                    Refusal(
                        path,
                        "content does not match its declared SHA-256 (truncated or corrupted"
                        f"{size_note})",
                        tuple(companions),
                        digest,
                    )
                )
            else:
                result.waiting.append(name)
        for missing in sorted(expected):
            result.waiting.append(missing)  # manifest arrived before its data file
        return result

    # --- archiving ---------------------------------------------------------------------------

    def _stamped(self, directory: Path, name: str) -> Path:
        stamp = self.clock.now().strftime("%Y%m%dT%H%M%S%fZ")
        target = directory / f"{stamp}_{name}"
        counter = 1
        while target.exists():
            counter += 1
            target = directory / f"{stamp}_{counter}_{name}"
        return target

    def _move(self, path: Path, directory: Path, companions: Sequence[Path]) -> Path:
        target = self._stamped(directory, path.name)
        os.replace(path, target)
        prefix = target.name[: len(target.name) - len(path.name)]
        for companion in companions:
            if companion.exists():
                os.replace(companion, directory / f"{prefix}{companion.name}")
        self._last.pop(path.name, None)
        return target

    def _write_json(self, path: Path, content: Mapping[str, Any]) -> None:
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n", "utf-8")
        os.replace(temporary, path)

    def archive_processed(self, ready: ReadyFile, report: Mapping[str, Any]) -> Path:
        """Move a handled file to ``processed/`` with its report; remember its checksum."""
        target = self._move(ready.path, self.processed_dir, ready.companions)
        self._write_json(
            target.with_name(target.name + ".report.json"),
            {
                "file": ready.path.name,
                "sha256": ready.sha256,
                "size_bytes": ready.size,
                "processed_at": self.clock.now().isoformat(),
                **report,
            },
        )
        self.seen.remember(self.connector, ready.sha256, ready.path.name, PROCESSED)
        return target

    def archive_rejected(
        self,
        path: Path,
        reason: str,
        *,
        companions: Sequence[Path] = (),
        sha256: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> Path:
        """Move a refused file to ``rejected/`` with a ``.reason.json`` a person can act on."""
        target = self._move(path, self.rejected_dir, companions)
        content: dict[str, Any] = {
            "file": path.name,
            "reason": reason,
            "rejected_at": self.clock.now().isoformat(),
        }
        if sha256:
            content["sha256"] = sha256
        if details:
            content.update(details)
        self._write_json(target.with_name(target.name + ".reason.json"), content)
        log.warning("%s: rejected dropped file %s: %s", self.connector, path.name, reason)
        return target

    def duplicate_of(self, ready: ReadyFile) -> str | None:
        """The name under which the same content was already processed, if it was."""
        return self.seen.seen(self.connector, ready.sha256)


def prune_archives(folder: Path | str, max_age_seconds: float, now_epoch: float) -> int:
    """Delete the archived files of drop folder ``folder`` (its ``processed/`` and
    ``rejected/``, with their reports) last changed more than ``max_age_seconds`` before
    ``now_epoch``; returns how many were deleted.

    Why: an archived partner file is the partner's whole extract, national IDs in clear, kept
    only so an operator can look into a run or a refusal. Kept forever it is a second copy of
    the registry's most sensitive data outside the database's access control and encryption.
    Symbolic links and folders are never followed or deleted.
    """
    cutoff = now_epoch - max_age_seconds
    deleted = 0
    for name in (PROCESSED, REJECTED):
        directory = Path(folder) / name
        if not directory.is_dir() or directory.is_symlink():
            continue
        for entry in os.scandir(directory):
            if not entry.is_file(follow_symlinks=False):
                continue
            try:
                if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    os.unlink(entry.path)
                    deleted += 1
            except FileNotFoundError:  # another process pruned it first
                continue
    return deleted
