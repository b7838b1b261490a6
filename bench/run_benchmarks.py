#!/usr/bin/env python3
"""Run every tandem benchmark (and the callgrind perf programs) and regenerate docs/benchmarks.md.

    python3 bench/run_benchmarks.py          # full run -> build/release/bench-results/*.json
                                             #          -> docs/benchmarks.md + docs/benchmarks/*.png

It configures the `release` preset when build/release is not configured yet and builds
bench/*_bench there (--no-build skips that), then runs them; the perf table needs a build with
tests (the `dev` preset's build/dev, configured here when absent; only the perf_* programs are
built). It prints its expected duration first (about 20 minutes on 2 cores).

Repetitions run in interleaved rounds (default --interleave rounds): round r starts every
benchmark program once, in a random order, with --benchmark_repetitions=1 and
--benchmark_enable_random_interleaving=true, so within a round every benchmark of a program runs
once in a fresh random order; the rounds are then merged into one JSON per program with
repetition_index = round. Each repetition of an implementation thus sits next to one of every
other implementation, and bench/report.py pairs them round by round for its ratios.
--interleave shuffle instead runs each program once with --benchmark_repetitions=R and Google
Benchmark's own random interleaving, which shuffles all repetitions of all benchmarks together
(no pairing: the report then divides medians).

The instruction-count table comes from `python3 tests/perf/run_perf.py --build-dir <B> --json
<out>/perf.json`, where <B> is a build with TANDEM_BUILD_TESTS=ON (it holds
tests/perf/perf_programs.json; the perf programs are compiled -O2 whatever its build type):
--perf-build-dir, or else build/dev (the dev preset's tree) or build/release when it has
one. The perf programs are (re)built there first. Without such a build, or without
valgrind, the page says the table was not measured.

The command line, the rounds, the time taken and every failure go to <out>/run_info.json and
onto the page. Thread counts are fixed in the benchmark definitions (1 and 2, real time).
"""
import argparse
import json
import os
import pathlib
import random
import shlex
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Seconds a run takes beyond min_time per benchmark (growing the iteration count, building the
# 1,000,000-entry maps, thread start-up), per benchmark and repetition: measured on the 2-core
# development VM, used only for the estimate printed before a run.
# (about 0.5 s per benchmark at min time 0.2 s, 0.14 s at 0.01 s.)
OVERHEAD_PER_BENCHMARK_S = 0.12
GROWTH_FACTOR = 1.8  # Google Benchmark runs about this many times min_time per benchmark


def shown(command):
    """A command line as the page shows it: paths relative to the checkout, `python3`."""
    text = shlex.join(["python3" if c == sys.executable else c for c in map(str, command)])
    return text.replace(str(ROOT) + "/", "")


def list_benchmarks(program, bench_filter):
    command = [str(program), "--benchmark_list_tests=true"]
    if bench_filter:
        command.append(f"--benchmark_filter={bench_filter}")
    try:
        out = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
        return [line for line in out.stdout.splitlines() if line.strip()]
    except (OSError, subprocess.TimeoutExpired):
        return []


def configure_preset(preset):
    command = ["cmake", "--preset", preset]
    print("$", shlex.join(command), flush=True)
    return subprocess.run(command, cwd=ROOT, check=False).returncode == 0


def build_benchmarks(build):
    """Configures (release preset) when needed and builds bench/*_bench; False on failure."""
    if not (build / "CMakeCache.txt").exists():
        if build.resolve() != (ROOT / "build" / "release").resolve():
            print(f"{build} is not configured", file=sys.stderr)
            return False
        if not configure_preset("release"):
            return False
    targets = sorted(p.stem for p in (ROOT / "bench").glob("*_bench.cpp"))
    command = ["cmake", "--build", str(build), "--target", *targets]
    print("$", shlex.join(command), flush=True)
    return subprocess.run(command, check=False).returncode == 0


def find_perf_build(explicit):
    if explicit:
        b = pathlib.Path(explicit)
        return b if (b / "tests" / "perf" / "perf_programs.json").exists() else None
    dev = ROOT / "build" / "dev"
    if not (dev / "CMakeCache.txt").exists():
        configure_preset("dev")  # configure only: run_perf() builds just the perf programs
    # Only the presets' own build trees: a build somebody else configured is theirs to build.
    for b in (ROOT / "build" / "dev", ROOT / "build" / "release"):
        if (b / "tests" / "perf" / "perf_programs.json").exists():
            return b
    return None


def run_perf(args, out, info):
    perf_json = out / "perf.json"
    script = ROOT / "tests" / "perf" / "run_perf.py"
    if args.no_perf:  # the last table, if any, stays (instruction counts are not noisy)
        info["perf"] = {"status": "skipped with --no-perf" + (
            "; the table is from the previous run" if perf_json.exists() else "")}
        return
    perf_json.unlink(missing_ok=True)
    if not script.exists():
        info["perf"] = {"status": "tests/perf/run_perf.py does not exist in this checkout"}
        return
    build = find_perf_build(args.perf_build_dir)
    if build is None:
        where = args.perf_build_dir or "build/*"
        info["perf"] = {"status": f"no build with the perf programs in {where} (configure one with "
                                  "-DTANDEM_BUILD_TESTS=ON and valgrind installed, e.g. "
                                  "`cmake --preset dev`, then pass --perf-build-dir)"}
        return
    manifest = json.loads((build / "tests" / "perf" / "perf_programs.json").read_text())
    targets = [p["name"] for p in manifest.get("programs", [])]
    if targets:
        build_cmd = ["cmake", "--build", str(build), "--target", *targets]
        print("$", shlex.join(build_cmd), flush=True)
        if subprocess.run(build_cmd, check=False).returncode != 0:
            info["perf"] = {"status": f"building the perf programs in {build} failed",
                            "build_dir": str(build)}
            return
    command = [sys.executable, str(script), "--build-dir", str(build), "--json", str(perf_json)]
    print("$", shlex.join(command), flush=True)
    rc = subprocess.run(command, check=False).returncode
    # run_perf.py exits non-zero when a budget is exceeded; the table still shows it.
    status = "ok" if rc == 0 else f"run_perf.py exited with {rc} (a budget exceeded or missing)"
    if rc == 77:
        status = "valgrind cannot run here (run_perf.py exit 77; its output says why)"
    elif not perf_json.exists():
        status = f"run_perf.py exited with {rc} and wrote no JSON"
    info["perf"] = {"status": status, "command": shown(command), "build_dir": str(build)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default=str(ROOT / "build" / "release"),
                        help="build with the Release benchmark programs in bench/ "
                             "(default build/release, the release preset's)")
    parser.add_argument("--out", default=None, help="JSON directory (default <build>/bench-results)")
    parser.add_argument("--repetitions", type=int, default=5, help="rounds (or repetitions), default 5")
    parser.add_argument("--min-time", default="0.2", help="--benchmark_min_time, seconds (default 0.2)")
    parser.add_argument("--interleave", choices=("rounds", "shuffle"), default="rounds",
                        help="rounds (default): one process per program per round, paired "
                             "ratios; shuffle: Google Benchmark's own interleaving, unpaired")
    parser.add_argument("--filter", default=None, help="--benchmark_filter regex (default: all)")
    parser.add_argument("--only", nargs="*", default=None, help="program names, e.g. mix_bench (default: all)")
    parser.add_argument("--perf-build-dir", default=None,
                        help="build with the perf programs, tests/perf/perf_programs.json "
                             "(default: build/dev, else build/release, when either has it)")
    parser.add_argument("--no-perf", action="store_true", help="skip the callgrind table")
    parser.add_argument("--no-run", action="store_true", help="only rebuild the report")
    parser.add_argument("--no-build", action="store_true",
                        help="run the benchmark programs as they are (default: configure the "
                             "release preset if needed and build bench/*_bench first)")
    parser.add_argument("--seed", type=int, default=None, help="random seed of the program order per round (default: "
                             "fresh)")
    parser.add_argument("--report", default=str(ROOT / "docs" / "benchmarks.md"),
                        help="the page to write (default docs/benchmarks.md; plots go to "
                             "benchmarks/ beside it)")
    args = parser.parse_args()

    build = pathlib.Path(args.build_dir)
    out = pathlib.Path(args.out) if args.out else build / "bench-results"
    out.mkdir(parents=True, exist_ok=True)
    report = [sys.executable, str(ROOT / "bench" / "report.py"), "--results", str(out),
              "--build-dir", str(build), "--output", args.report]
    if args.no_run:
        return subprocess.call(report)

    if not args.no_build and not build_benchmarks(build):
        print("building the benchmarks failed (--no-build runs the programs as they are)",
              file=sys.stderr)
        return 1
    programs = sorted(p for p in (build / "bench").glob("*_bench") if os.access(p, os.X_OK))
    if args.only:
        programs = [p for p in programs if p.name in args.only]
    if not programs:
        print(f"no benchmark programs in {build / 'bench'}: run "
              "`cmake --workflow --preset bench` first", file=sys.stderr)
        return 1
    counts = {p.name: len(list_benchmarks(p, args.filter)) for p in programs}
    total = sum(counts.values())
    estimate = total * args.repetitions * (float(args.min_time) * GROWTH_FACTOR
                                           + OVERHEAD_PER_BENCHMARK_S)
    print(f"{total} benchmarks x {args.repetitions} repetitions, min time {args.min_time} s: "
          f"expect about {estimate / 60:.0f} min ({estimate:.0f} s), plus the perf table "
          "(about a minute under valgrind)", flush=True)

    argv = [pathlib.Path(sys.argv[0]).as_posix()] + sys.argv[1:]
    info = {"command": shlex.join(["python3", *argv]), "interleave": args.interleave,
            "repetitions": args.repetitions, "min_time": args.min_time, "filter": args.filter,
            "benchmarks": counts, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "program_commands": {}, "failures": []}
    for program in programs:  # other programs' JSON stays (a narrowed run updates the page)
        (out / f"{program.name}.json").unlink(missing_ok=True)
    raw = out / "rounds"
    raw.mkdir(exist_ok=True)
    start = time.monotonic()
    rng = random.Random(args.seed)

    def command_for(program, json_path, repetitions):
        command = [str(program), "--benchmark_format=console",
                   f"--benchmark_out={json_path}", "--benchmark_out_format=json",
                   f"--benchmark_repetitions={repetitions}",
                   "--benchmark_enable_random_interleaving=true",
                   "--benchmark_display_aggregates_only=true",
                   f"--benchmark_min_time={args.min_time}"]
        if args.filter:
            command.append(f"--benchmark_filter={args.filter}")
        return command

    if args.interleave == "shuffle":
        for program in programs:
            command = command_for(program, out / f"{program.name}.json", args.repetitions)
            info["program_commands"][program.name] = shown(command)
            print("$", shlex.join(command), flush=True)
            if subprocess.run(command, check=False).returncode != 0:
                info["failures"].append(f"{program.name} exited non-zero")
            else:
                data = json.loads((out / f"{program.name}.json").read_text())
                data["tandem_run"] = {"interleave": "shuffle", "repetitions": args.repetitions}
                (out / f"{program.name}.json").write_text(json.dumps(data, indent=1))
    else:
        merged = {}
        for rnd in range(args.repetitions):
            order = list(programs)
            rng.shuffle(order)
            for program in order:
                json_path = raw / f"{program.name}.round{rnd}.json"
                command = command_for(program, json_path, 1)
                info["program_commands"].setdefault(program.name, shown(command).replace(
                    f".round{rnd}.json", ".round<r>.json"))
                elapsed = (time.monotonic() - start) / 60
                print(f"[round {rnd + 1}/{args.repetitions}, {elapsed:.0f} min] "
                      f"$ {shlex.join(command)}", flush=True)
                result = subprocess.run(command, check=False, stdout=subprocess.DEVNULL)
                if result.returncode != 0 or not json_path.exists():
                    info["failures"].append(f"{program.name} round {rnd} exited with "
                                            f"{result.returncode}")
                    continue
                data = json.loads(json_path.read_text())
                entry = merged.setdefault(program.name, {"context": data.get("context", {}),
                                                         "benchmarks": []})
                for b in data.get("benchmarks", []):
                    if b.get("run_type") == "aggregate":
                        continue
                    b["repetition_index"] = rnd
                    b["repetitions"] = args.repetitions
                    entry["benchmarks"].append(b)
        for name, data in merged.items():
            data["tandem_run"] = {"interleave": "rounds", "rounds": args.repetitions}
            (out / f"{name}.json").write_text(json.dumps(data, indent=1))

    info["benchmarks_s"] = round(time.monotonic() - start)
    previous = out / "run_info.json"
    if previous.exists() and (args.only or args.filter):  # the other programs' JSON stays
        try:
            old = json.loads(previous.read_text()).get("program_commands", {})
            info["program_commands"] = {**old, **info["program_commands"]}
        except ValueError:
            pass
    run_perf(args, out, info)
    info["duration_s"] = round(time.monotonic() - start)
    info["perf_s"] = info["duration_s"] - info["benchmarks_s"]
    (out / "run_info.json").write_text(json.dumps(info, indent=1))
    print(f"benchmarks + perf took {info['duration_s'] / 60:.1f} min; "
          f"failures: {info['failures'] or 'none'}", flush=True)
    rc = subprocess.call(report)
    return rc or (1 if info["failures"] else 0)


if __name__ == "__main__":
    sys.exit(main())
