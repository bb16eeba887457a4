"""Where a run writes: every path lives under ``NUDGELAB_HOME`` (default ``./.nudgelab``)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

HOME_ENV = "NUDGELAB_HOME"
HASH_KEY_ENV = "NUDGELAB_HASH_KEY"


class MissingHashKey(RuntimeError):
    """The warehouse was hashed with a key that is nowhere to be found."""


@dataclass(frozen=True)
class Settings:
    home: Path

    @property
    def warehouse_path(self) -> Path:
        """The build database: only the pipeline writes it, one step after another."""
        return self.home / "warehouse.duckdb"

    @property
    def published_dir(self) -> Path:
        """Snapshots that passed the audit; readers open the newest one read-only."""
        return self.home / "published"

    @property
    def spool_dir(self) -> Path:
        return self.home / "spool"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def ops_path(self) -> Path:
        return self.home / "ops.sqlite"

    @property
    def hash_key_path(self) -> Path:
        return self.home / "hash.key"

    def ensure(self) -> "Settings":
        """Create the home (private: 0700, it holds the warehouse and the hash key) and its folders."""
        for folder in (self.home, self.spool_dir, self.reports_dir, self.published_dir):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.home.stat().st_mode & 0o077:
            os.chmod(self.home, 0o700)
        return self

    def hash_key(self, create: bool = True) -> bytes:
        """The key for hashing phone numbers, e-mails and IPs before they reach the warehouse.

        Taken from ``NUDGELAB_HASH_KEY`` when set; otherwise a random key is created once in
        ``NUDGELAB_HOME/hash.key`` (mode 0600) so that hashes stay stable for this installation.
        With ``create=False`` (a warehouse already hashed with some key) a missing key is an error,
        not a new key.
        """
        env = os.environ.get(HASH_KEY_ENV)
        if env:
            return env.encode("utf-8")
        path = self.hash_key_path
        if not path.exists() and not create:
            raise MissingHashKey(
                f"no hash key: {HASH_KEY_ENV} is not set and {path} does not exist, but the warehouse was "
                "hashed with a key: set the variable to that key or restore the file (a new key would "
                "make every identifier, and the event ids derived from them, differ)")
        if not path.exists():
            self.home.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
        return path.read_text().strip().encode("utf-8")


def load_settings(home: str | os.PathLike[str] | None = None) -> Settings:
    """Settings from ``home``, else ``$NUDGELAB_HOME``, else ``./.nudgelab`` (made absolute)."""
    chosen = home if home is not None else os.environ.get(HOME_ENV, ".nudgelab")
    return Settings(Path(chosen).expanduser().resolve())
