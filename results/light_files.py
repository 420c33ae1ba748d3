"""Copies the light files of finished run folders (config.json, metrics.json, history.csv, attacks/*.json; no
weights) into a committed result's runs/ folder, with every path they record made portable, so that what is
committed under results/ names no machine's folders.

    python results/light_files.py SOURCE DEST                       # every finished run under SOURCE -> DEST
    python results/light_files.py --in-place DEST --runs-root RUNS  # the paths in files already under DEST

Run it from the repository root (every make.sh does). A path inside the study's run root (SOURCE, or RUNS: the folder
the runs were made in, as make.sh's $RUNS) is recorded relative to it, as the runs are named under DEST: a teacher
`../study-converged/resnet20-folder-cifar10-jpeg` becomes `resnet20-folder-cifar10-jpeg`. Any other path (the data
and weights beside the repository) is recorded relative to the repository root: the data set `folder:<the data
folder>` becomes `folder:../data/cifar10-jpeg`, where every make.sh puts it. Runs copied earlier stay.
"""

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

LIGHT = ("config.json", "metrics.json", "history.csv")
PREFIXES = ("folder:", "")  # a value is a path, or a folder data set's name


def relative(value, root, runs_root=None):
    """`value` with each path in it (absolute, or relative to `root` as `../x`) made portable: relative to `runs_root`
    when it lies inside it, else relative to `root`; any other value as it is."""
    if isinstance(value, dict):
        return {k: relative(v, root, runs_root) for k, v in value.items()}
    if isinstance(value, list):
        return [relative(v, root, runs_root) for v in value]
    if isinstance(value, str):
        for prefix in PREFIXES:
            path = value[len(prefix) :]
            if value.startswith(prefix) and (os.path.isabs(path) or path.startswith(("../", "./"))):
                full = os.path.normpath(os.path.join(root, path))
                runs = None if runs_root is None else os.path.normpath(os.path.join(root, runs_root))
                return prefix + os.path.relpath(full, runs if runs and Path(full).is_relative_to(runs) else root)
    return value


def write_relative(source, target, root, runs_root=None):
    """Copies `source` to `target`; a JSON file's paths made portable (`relative`)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.suffix != ".json":
        if source.resolve() != target.resolve():
            shutil.copyfile(source, target)
        return
    data = relative(json.loads(source.read_text()), root, runs_root)
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
            write_relative(file, target / file.relative_to(run), root, source)


def in_place(dest, root, runs_root=None):
    for file in sorted(dest.rglob("*.json")):
        write_relative(file, file, root, runs_root)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--in-place", action="store_true", help="rewrite the files under DEST only")
    parser.add_argument("--runs-root", help="with --in-place: the folder the runs were made in (make.sh's $RUNS)")
    parser.add_argument("paths", nargs="+", metavar="SOURCE DEST | DEST")
    args = parser.parse_args(argv)
    root = Path.cwd()
    if args.in_place:
        (dest,) = args.paths
        in_place(Path(dest), root, args.runs_root)
    else:
        source, dest = args.paths
        copy_runs(Path(source), Path(dest), root)


if __name__ == "__main__":
    sys.exit(main())
