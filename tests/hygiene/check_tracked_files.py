#!/usr/bin/env python3
"""Fails when the repository tracks a file outside the places its layout names.

Usage: check_tracked_files.py <source dir>

Every tracked path must be one of ALLOWED_FILES (at the top level) or lie under one of
ALLOWED_DIRS. A scratch output committed by mistake (loop_il.txt, a test loop's log, sat at the
root of main from c652f08 until 2026-12-05) is what a consumer sees first in a FetchContent or
release tarball. Exit 0: clean; 1: strays (listed); 77: not a git checkout or no git (CTest
reports the test as skipped: a release tarball has nothing to check).
"""
import subprocess
import sys

ALLOWED_FILES = {
    ".clang-format", ".clang-tidy", ".gitignore", "CMakeLists.txt", "CMakePresets.json",
    "LICENSE", "README.md",
}
ALLOWED_DIRS = (".ci/", "bench/", "cmake/", "docs/", "examples/", "fuzz/", "include/", "model/",
                "ports/", "tests/")


def main() -> int:
    source = sys.argv[1]
    try:
        listed = subprocess.run(["git", "-C", source, "ls-files", "-z"], capture_output=True,
                                check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        print("not a git checkout (or no git): nothing to check")
        return 77
    paths = [p.decode() for p in listed.split(b"\0") if p]
    strays = [p for p in paths if p not in ALLOWED_FILES and not p.startswith(ALLOWED_DIRS)]
    for p in strays:
        print(f"stray tracked file: {p} (neither a top-level file of {sorted(ALLOWED_FILES)} "
              f"nor under {', '.join(ALLOWED_DIRS)}); git rm it, or add its place to "
              "tests/hygiene/check_tracked_files.py with a reason")
    print(f"{len(paths)} tracked files, {len(strays)} strays")
    return 1 if strays else 0


if __name__ == "__main__":
    sys.exit(main())
