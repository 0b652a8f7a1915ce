"""The pyspark daemon of the osteoguard job (``spark.python.daemon.module``): pyspark's own
daemon (``pyspark.daemon``, which forks the Python workers), with two differences made before
it starts:

* pyspark is imported from its installed package, with the package's compiled ``.pyc`` files,
  when Spark's ``pyspark.zip`` on the worker's ``PYTHONPATH`` is the zip *of that same
  package* (a pip-installed pyspark: ``.../site-packages/pyspark/python/lib/pyspark.zip``):
  the zip (and py4j's beside it, when py4j is installed too) is taken off ``sys.path``.
  Spark puts the zip first, and a zip holds only sources: every Python process then compiles
  the pyspark modules it imports again (the daemon, and each worker the modules it imports
  lazily for Arrow), and pyspark's worker calls ``importlib.invalidate_caches()`` for every
  task, which makes the zip's importer read its directory (1,220 entries) again. Measured on
  20,000 patients (``local[1]``), that was the largest single cost of the Python processes
  (BENCHMARKS.md "Spark", issue 21 fourth round). A Spark distribution's zip
  (``$SPARK_HOME/python/lib``) is left first: its sources are the ones that match the JVM.
* pyarrow and the engine are imported once in the daemon, so that the workers it forks have
  them already.

Nothing else differs: the daemon is ``pyspark.daemon.manager``.
"""

from __future__ import annotations

import os
import sys


def _zip_of_installed_pyspark(entry: str) -> bool:
    """Whether the sys.path entry is the ``pyspark.zip`` / ``py4j-*.zip`` inside a pyspark
    package that another sys.path entry holds (a pip-installed pyspark), with the package (and
    for py4j's zip, py4j) installed there."""
    if not entry.endswith(".zip"):
        return False
    lib = os.path.dirname(os.path.abspath(entry))
    package = os.path.dirname(os.path.dirname(lib))  # <dir>/pyspark/python/lib/x.zip
    if os.path.basename(package) != "pyspark" or os.path.basename(lib) != "lib":
        return False
    parent = os.path.dirname(package)
    if not any(os.path.abspath(p or ".") == parent for p in sys.path if not p.endswith(".zip")):
        return False
    name = os.path.basename(entry)
    return name == "pyspark.zip" or (name.startswith("py4j") and
                                     os.path.isdir(os.path.join(parent, "py4j")))


def prefer_installed_pyspark() -> None:
    """Takes the zips of an installed pyspark package off ``sys.path`` (and their cached
    importers: pyspark's worker calls ``importlib.invalidate_caches()`` for every task, which
    makes a zip's importer read the zip's whole directory again)."""
    zips = [p for p in sys.path if _zip_of_installed_pyspark(p)]
    if zips:
        sys.path[:] = [p for p in sys.path if p not in zips]
        for z in zips:
            sys.path_importer_cache.pop(z, None)


prefer_installed_pyspark()

import pyarrow  # noqa: E402,F401  (imported once here: the forked workers inherit it)

import osteoguard.spark  # noqa: E402,F401
from pyspark import daemon as _daemon  # noqa: E402

if __name__ == "__main__":
    _daemon.manager()
