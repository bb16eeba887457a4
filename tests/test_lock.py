"""The lock is what runs: installed versions equal requirements.lock, and the lock honours pyproject.

``make setup`` installs exactly the lock (uv sync removes what it does not name), so these fail
when someone hand-installs or upgrades a package, when the lock was edited without the ranges
(or the ranges without ``make lock``), or when a pin lost its hashes.
"""

from __future__ import annotations

import re
import sys
import tomllib
from importlib import metadata

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.conftest import ROOT

LOCK = ROOT / "requirements.lock"
PYPROJECT = ROOT / "pyproject.toml"
NOT_LOCKED = {"nudgelab", "pip"}  # the project itself, and the installer every venv starts with
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


def locked() -> dict[str, tuple[Version, Marker | None, int]]:
    """name -> (version, marker, number of hashes) for every pin in the lock."""
    pins: dict[str, tuple[Version, Marker | None, int]] = {}
    current = None
    for line in LOCK.read_text().splitlines():
        match = PIN.match(line)
        if match:
            name, version, marker = match.groups()
            current = canonicalize_name(name)
            assert current not in pins, f"{name} is pinned twice in the lock"
            pins[current] = (Version(version), Marker(marker) if marker else None, 0)
        elif line.strip().startswith("--hash=sha256:") and current:
            version, marker, hashes = pins[current]
            pins[current] = (version, marker, hashes + 1)
        elif line and not line.startswith(" "):
            current = None
    return pins


def applies(marker: Marker | None) -> bool:
    return marker is None or marker.evaluate()


def test_every_pin_carries_hashes():
    pins = locked()
    assert len(pins) > 50  # the parser found the lock's pins at all
    assert not [name for name, (_, _, hashes) in pins.items() if hashes == 0]


def test_installed_packages_are_exactly_the_lock():
    pins = {name: version for name, (version, marker, _) in locked().items() if applies(marker)}
    installed = {canonicalize_name(d.metadata["Name"]): Version(d.version) for d in metadata.distributions()}
    wrong = {name: f"{installed[name]} installed, {version} locked"
             for name, version in pins.items() if name in installed and installed[name] != version}
    missing = sorted(name for name in pins if name not in installed)
    extra = sorted(set(installed) - set(pins) - NOT_LOCKED)
    assert not wrong and not missing and not extra, (
        f"the environment is not the lock (run `make setup`): wrong {wrong}, missing {missing}, not locked {extra}")


def _declared() -> list[Requirement]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    requirements = [Requirement(r) for r in project["dependencies"]]
    for extra in project.get("optional-dependencies", {}).values():
        requirements += [Requirement(r) for r in extra]
    return requirements


def test_the_lock_satisfies_every_range_in_pyproject():
    pins = locked()
    outside = []
    for requirement in _declared():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is declared in pyproject.toml but not locked: run `make lock`"
        version = pins[name][0]
        if not requirement.specifier.contains(version, prereleases=True):
            outside.append(f"{requirement.name} {version} not in {requirement.specifier}")
    assert not outside, f"the lock is outside pyproject's ranges (run `make lock`): {outside}"


def test_the_lock_targets_the_python_pyproject_requires():
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    floor = re.match(r">=\s*(\d+)\.(\d+)", project["requires-python"]).groups()
    assert tuple(map(int, floor)) <= sys.version_info[:2]
    assert f"--python-version {floor[0]}.{floor[1]}" in (ROOT / "Makefile").read_text()


def test_the_major_versions_issue_13_moved_to_are_the_ones_installed():
    versions = {name: Version(metadata.version(name)) for name in ("duckdb", "polars", "pandas", "numpy", "dbt-core")}
    assert versions["duckdb"].major == 2
    assert versions["polars"].major == 2
    assert versions["pandas"].major == 3
    assert versions["numpy"].major == 2
    assert (versions["dbt-core"].major, versions["dbt-core"].minor) == (1, 11)
