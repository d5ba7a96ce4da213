"""Compare two ``pip freeze --all`` listings taken before and after installing defi1 into an environment.

Usage: python compare_installs.py BEFORE AFTER [--allow NAME ...]

Fails (exit 1) when a package present before has another version (or is gone) after, or when a package was added
that is not allowed; prints what was added. Names are compared as pip normalises them.
"""

import argparse
import re
import sys


def read_freeze(path):
    """``{normalised name: version or URL}`` of a ``pip freeze`` listing (``name==version`` or ``name @ url``)."""
    packages = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            match = re.match(r"^([A-Za-z0-9._-]+)\s*(?:==|@)\s*(.+)$", line)
            if match:
                packages[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return packages


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--allow", nargs="*", default=["defi1"], help="packages that may be added")
    arguments = parser.parse_args(argv)
    before, after = read_freeze(arguments.before), read_freeze(arguments.after)
    changed = [f"{name} {version} -> {after.get(name, '(removed)')}" for name, version in sorted(before.items())
               if after.get(name) != version]
    added = sorted(set(after) - set(before))
    unexpected = [name for name in added if name not in arguments.allow]
    print(f"{len(before)} packages before, {len(after)} after; added: {', '.join(added) or 'nothing'}")
    for line in changed:
        print(f"changed: {line}")
    for name in unexpected:
        print(f"added but not allowed: {name} {after[name]}")
    return 1 if changed or unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
