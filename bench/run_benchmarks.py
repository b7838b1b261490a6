#!/usr/bin/env python3
"""Run every tandem benchmark and regenerate docs/benchmarks.md.

    cmake --workflow --preset bench          # Release build (+ smoke run)
    python3 bench/run_benchmarks.py          # full run -> build/release/bench-results/*.json
                                             #          -> docs/benchmarks.md + docs/benchmarks/*.png

Each benchmark program runs with --benchmark_repetitions (default 5) and aggregates only, so
the report quotes medians. Thread counts are fixed in the benchmark definitions (1 and 2,
real time). Options narrow the run for quick looks (--only, --filter, --min-time); the report
is rebuilt from whatever JSON files are present.
"""
import argparse
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default=str(ROOT / "build" / "release"))
    parser.add_argument("--out", default=None, help="JSON directory (default <build>/bench-results)")
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--min-time", default="0.2", help="--benchmark_min_time, seconds")
    parser.add_argument("--filter", default=None, help="--benchmark_filter regex")
    parser.add_argument("--only", nargs="*", default=None, help="program names, e.g. mix_bench")
    parser.add_argument("--no-run", action="store_true", help="only rebuild the report")
    parser.add_argument("--report", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args()

    build = pathlib.Path(args.build_dir)
    out = pathlib.Path(args.out) if args.out else build / "bench-results"
    out.mkdir(parents=True, exist_ok=True)

    if not args.no_run:
        programs = sorted(p for p in (build / "bench").glob("*_bench") if os.access(p, os.X_OK))
        if args.only:
            programs = [p for p in programs if p.name in args.only]
        if not programs:
            print(f"no benchmark programs in {build / 'bench'}: run "
                  "`cmake --workflow --preset bench` first", file=sys.stderr)
            return 1
        for program in programs:
            command = [str(program), "--benchmark_format=console",
                       f"--benchmark_out={out / (program.name + '.json')}",
                       "--benchmark_out_format=json",
                       f"--benchmark_repetitions={args.repetitions}",
                       "--benchmark_report_aggregates_only=true",
                       f"--benchmark_min_time={args.min_time}"]
            if args.filter:
                command.append(f"--benchmark_filter={args.filter}")
            print("$", " ".join(command), flush=True)
            subprocess.run(command, check=True)

    report = ROOT / "bench" / "report.py"
    return subprocess.call([sys.executable, str(report), "--results", str(out),
                            "--build-dir", str(build), "--output", args.report])


if __name__ == "__main__":
    sys.exit(main())
