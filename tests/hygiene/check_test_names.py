#!/usr/bin/env python3
"""Checks that every Catch2 test name survives CTest discovery (docs/reliability.md rule 27).

    python3 tests/hygiene/check_test_names.py PROGRAM...

catch_discover_tests makes one CTest entry per test case and runs the program with the test's
name as its filter. A name with ';' is split into several entries (CMake lists), a name that
starts with '~' is read by Catch2 as "every test but this one", and '[' starts a tag: each of
those makes the entry run some other set of tests than the one it names (or none, which
`--warn NoTests` then fails). Lists every such name and exits 1; 0 when there is none.
"""

import subprocess
import sys


def bad_reason(name):
    if ";" in name:
        return "contains ';' (CTest splits the name into several entries)"
    if name.startswith("~"):
        return "starts with '~' (Catch2 reads an exclusion)"
    if "[" in name:
        return "contains '[' (Catch2 reads a tag)"
    return None


def main(programs):
    if not programs:
        sys.exit("check_test_names.py: no program given")
    bad = []
    for program in programs:
        listed = subprocess.run([program, "--list-test-names-only"], capture_output=True,
                                text=True, timeout=120, check=False)
        if listed.returncode != 0 and not listed.stdout:
            sys.exit(f"check_test_names.py: {program} --list-test-names-only failed "
                     f"({listed.returncode}):\n{listed.stderr}")
        for name in listed.stdout.splitlines():
            reason = bad_reason(name.strip())
            if reason:
                bad.append(f"{program}: \"{name.strip()}\": {reason}")
    for line in bad:
        print(line)
    print(f"{len(bad)} test name(s) that CTest cannot run as named, in {len(programs)} programs")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
