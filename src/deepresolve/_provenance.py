"""Provenance: the installed versions of the packages that shape a result (recorded in its params)."""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Iterable

#: Packages whose versions shape a result.
PACKAGES = ("deepresolve", "torch", "numpy", "scipy", "scikit-learn", "pandas", "matplotlib", "logomaker", "h5py")


def package_versions(packages: Iterable[str] = PACKAGES) -> dict[str, str]:
    """Installed versions of ``packages`` and Python (``"not installed"`` when absent)."""
    out = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out
