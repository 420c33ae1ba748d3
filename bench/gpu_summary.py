"""Reads the results of one `bash bench/gpu.sh` call and prints, in Markdown, what docs/benchmarks.md and the dry-run take
from them: the ratios and peak memory, the GPU figures of the dry-run's cost model (`nodekd_cli.costs.COSTS["cuda"]`)
fitted from them, and the paper study's estimate with those figures, by part, in each precision and sweep.

    tar -xzf gpu-results.tgz && python -m bench.gpu_summary results

The cost figures: a student's fixed cost per training pass ("pass") is the intercept of the 32-channel step at
batch 8 and 64 (t1 = 1); its cost per 8x8 image at 512 channels ("student") is the 512-channel step at batch 128
less that, per image; a teacher's per 32x32 image ("teacher") is nodekd's ResNet20 step with the CUDA graph (the
default on CUDA). Attack steps are priced from them by the model (nodekd_cli.costs.ATTACK_PASS), and printed beside the
measured PGD step to check it.
"""

import argparse
import json
from collections import defaultdict
from pathlib import Path

from nodekd_cli import costs as cost_model
from nodekd_cli import study


def _read(folder, name):
    path = Path(folder) / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _run(found, t1):
    return next((run for run in found["runs"] if run["t1"] == t1), None) if found else None


def _gib(value):
    return "" if value is None else f"{value:.1f}"


# nodekd's variants of the student step, by label: (results file, precision) of each precision and memory format.
VARIANTS = {
    f"{precision}{', channels_last' if layout else ''}": (f"student_step_{layout}{precision}", precision)
    for layout in ("", "channels_last_")
    for precision in ("float32", "mixed_bfloat16")
}


def student_rows(folder):
    print(
        "| nodekd | t1 | nodekd | plain PyTorch + torchdiffeq (fp32) | ratio | NFE nodekd / plain | "
        "peak memory nodekd / plain (GiB) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for label, (name, _) in VARIANTS.items():
        found = _read(folder, name)
        for run in found["runs"] if found else []:
            ours, plain = run["nodekd"], run["torch"]
            print(
                f"| {label} | {run['t1']:g} | {ours['median_ms']:.1f} ms | {plain['median_ms']:.1f} ms | "
                f"{run['ratio']:.3f} | {ours['median_nfe']:g} / {plain['median_nfe']:g} | "
                f"{_gib(ours['peak_memory_gib'])} / {_gib(plain['peak_memory_gib'])} |"
            )


def attack_rows(folder):
    print(
        "\n| nodekd precision | t1 | nodekd | weights frozen | plain PGD loop (fp32) | ratio of times | "
        "peak memory nodekd / plain (GiB) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for precision in ("float32", "mixed_bfloat16"):
        found = _read(folder, f"attack_step_student_{precision}")
        for run in found["runs"] if found else []:
            of = run["of"]
            rates = [f"{of[name]['image_steps_per_second']:.1f} image-steps/s" for name in of]
            memory = [of[name].get("peak_memory_gib") for name in ("nodekd", "plain") if name in of]
            print(
                f"| {precision} | {run['t1']:g} | {' | '.join(rates)} | {run['ratio']:.3f} | "
                f"{' / '.join(_gib(m) for m in memory)} |"
            )


def costs(folder):
    """The GPU profile fitted from the results, per variant of nodekd's student step (those measured)."""
    narrow = [_run(_read(folder, f"student_step_32ch_b{batch}"), 1.0) for batch in (8, 64)]
    teacher = _read(folder, "teacher_step")
    found = {}
    if None in narrow:
        return found
    small, large = (run["nodekd"]["median_ms"] / 1000 for run in narrow)
    per_pass = max(0.0, small - 8 * (large - small) / 56)
    base = dict(cost_model.COSTS["cuda"], **{"pass": per_pass})
    if teacher and "graph" in teacher["variants"]:
        base["teacher"] = teacher["variants"]["graph"]["keras_median_ms"] / 1000 / teacher["batch_size"]
    for label, (name, _) in VARIANTS.items():
        found_step = _read(folder, name)
        run = _run(found_step, 1.0)
        if run:  # per image of an 8x8 state (32x32 inputs) at the benchmark's width
            per_image = (run["nodekd"]["median_ms"] / 1000 - per_pass) / found_step["batch_size"]
            if per_image <= 0:
                print(f"\nNo {label} cost figures: the fixed part of a pass exceeds the whole step (toy sizes?).")
                continue
            found[label] = dict(base, student=per_image, pixels=64, channels=found_step["channels"])
    return found


def _part(step, trained):
    """Which line of the breakdown a step's estimate adds to."""
    config = step.config if step.kind in study.TRAINING else trained[step.folder]
    what = "teachers" if config["kind"] in ("teacher", "import") else f"t1 = {config['t1']:g} students"
    return what if step.kind in study.TRAINING else f"attack sweeps and checks of {what}"


def estimate(profile, precision, sweep):
    """Hours of the paper preset's steps on one GPU with `profile`, by part."""
    steps = study.expand(study.preset("paper"), root="/nonexistent", precision=precision, sweep=sweep)
    seconds = cost_model.estimates(steps, "cuda", profile=profile)
    trained = {step.folder: step.config for step in steps if step.kind in study.TRAINING}
    hours = defaultdict(float)
    for step in steps:
        hours[_part(step, trained)] += (seconds[step.name] or 0.0) / 3600
    return hours


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", help="the results folder of bench/gpu.sh")
    args = parser.parse_args()
    folder = Path(args.results)
    if not folder.is_dir():
        raise SystemExit(f"{folder} is not a folder: give the results/ folder unpacked from gpu-results.tgz.")
    env = folder / "env.log"
    print(f"# bench/gpu.sh results\n\n```\n{env.read_text().strip() if env.exists() else 'no env.log'}\n```\n")
    stages = folder / "stages.tsv"
    if stages.exists():
        print("| check | exit status | seconds |\n| --- | --- | --- |")
        for line in stages.read_text().splitlines():
            print("| " + " | ".join(line.split("\t")) + " |")
    shape = _read(folder, "student_step_float32") or {"channels": "?", "batch_size": "?"}
    print(f"\nStudent train step ({shape['channels']} channels, batch {shape['batch_size']}):\n")
    student_rows(folder)
    print(f"\nPGD on the student ({shape['channels']} channels, batch {shape['batch_size']}):")
    attack_rows(folder)
    profiles = costs(folder)
    if not profiles:
        print("\nNo cost figures: the results lack the 32- or 512-channel student steps, or they give none (above).")
        return
    print("\nThe dry-run's GPU figures (nodekd_cli.costs.COSTS['cuda']) fitted from these:\n")
    for precision, profile in profiles.items():
        print(f"- {precision}: " + ", ".join(f"{key} {value:.4g}" for key, value in profile.items()))
    for precision in ("float32", "mixed_bfloat16"):
        attack = _read(folder, f"attack_step_student_{precision}")
        run = _run(attack, 1.0)
        if run and precision in profiles:
            profile = profiles[precision]
            measured = attack["batch_size"] / run["of"]["nodekd"]["image_steps_per_second"]
            model = attack["batch_size"] * profile["student"] + cost_model.ATTACK_PASS * profile["pass"]
            print(
                f"- {precision}: a PGD step at t1 = 1, batch {attack['batch_size']}: the model says "
                f"{1000 * model:.1f} ms, measured {1000 * measured:.1f} ms"
            )
    for sweep in ("independent", "monotone"):
        print(
            f"\nThe paper preset on one GPU, {sweep} sweeps (hours; mixed_bfloat16 counted at float32's NFE: in the "
            "CPU runs of results/mixed-precision it took 20% to 38% more evaluations):\n"
        )
        table = {label: estimate(profile, VARIANTS[label][1], sweep) for label, profile in profiles.items()}
        print("| part | " + " | ".join(table) + " |\n| --- |" + " --- |" * len(table))
        parts = sorted(
            {part for hours in table.values() for part in hours}, key=lambda p: -next(iter(table.values()))[p]
        )
        for part in parts:
            print(f"| {part} | " + " | ".join(f"{hours[part]:.0f}" for hours in table.values()) + " |")
        print("| **days** | " + " | ".join(f"**{sum(hours.values()) / 24:.1f}**" for hours in table.values()) + " |")


if __name__ == "__main__":
    main()
