"""Copies the light files of finished run folders (config.json, metrics.json, history.csv, attacks/*.json; no
weights) into a committed result's runs/ folder, with every absolute path they record made relative to the
repository root, so that what is committed under results/ names no machine's folders (issue 26).

    python results/light_files.py SOURCE DEST     # every finished run under SOURCE -> DEST/<its path under SOURCE>
    python results/light_files.py --in-place DEST  # the paths in files already committed under DEST

Run it from the repository root (every make.sh does). The absolute path of the data folder beside the repository
becomes `../data/cifar10-jpeg`, and the data set `folder:<that path>` becomes `folder:../data/cifar10-jpeg`: where the
data lie seen from the repository root, as the make.sh that made the runs put them. Runs copied earlier stay.
"""

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

LIGHT = ("config.json", "metrics.json", "history.csv")
PREFIXES = ("folder:", "")  # a value is a path, or a folder data set's name


def relative(value, root):
    """`value` with an absolute path in it made relative to `root`; any other value as it is."""
    if isinstance(value, dict):
        return {k: relative(v, root) for k, v in value.items()}
    if isinstance(value, list):
        return [relative(v, root) for v in value]
    if isinstance(value, str):
        for prefix in PREFIXES:
            path = value[len(prefix) :]
            if value.startswith(prefix) and os.path.isabs(path):
                return prefix + os.path.relpath(path, root)
    return value


def write_relative(source, target, root):
    """Copies `source` to `target`; a JSON file's absolute paths made relative to `root` (`relative`)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.suffix != ".json":
        if source.resolve() != target.resolve():
            shutil.copyfile(source, target)
        return
    data = relative(json.loads(source.read_text()), root)
    text = json.dumps(data, indent=2) + "\n"
    if source.resolve() != target.resolve() or text != source.read_text():
        target.write_text(text)


def copy_runs(source, dest, root):
    """The light files of every finished run (a folder with metrics.json) under `source`, into `dest`."""
    for metrics in sorted(source.rglob("metrics.json")):
        run = metrics.parent
        target = dest / run.relative_to(source)
        files = [run / name for name in LIGHT if (run / name).is_file()]
        files += sorted((run / "attacks").glob("*.json"))
        for file in files:
            write_relative(file, target / file.relative_to(run), root)


def in_place(dest, root):
    for file in sorted(dest.rglob("*.json")):
        write_relative(file, file, root)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--in-place", action="store_true", help="rewrite the files under DEST only")
    parser.add_argument("paths", nargs="+", metavar="SOURCE DEST | DEST")
    args = parser.parse_args(argv)
    root = Path.cwd()
    if args.in_place:
        (dest,) = args.paths
        in_place(Path(dest), root)
    else:
        source, dest = args.paths
        copy_runs(Path(source), Path(dest), root)


if __name__ == "__main__":
    sys.exit(main())
