#!/usr/bin/env python3
"""Turn the JSON from bench/run_benchmarks.py into docs/benchmarks.md + plots.

    python3 bench/report.py --results DIR [--output docs/benchmarks.md] [--build-dir B]
    python3 bench/report.py --self-test      # checks this script on synthetic data

DIR holds one Google Benchmark JSON per program (<program>.json), and optionally perf.json
(tests/perf/run_perf.py --json: callgrind instruction counts) and run_info.json (the command
line, the interleaving mode and what was skipped; written by run_benchmarks.py).

Benchmark names follow one convention across bench/*_bench.cpp:

    <workload>/<implementation>[/<param>:<value>...][/real_time][/threads:<T>]

A bare number is a positional parameter (the first one is called n). An implementation whose
name starts with "tandem" (or is rc_map) is tandem's; one containing "unsync" is the limit (no
synchronisation at all); every other one is a baseline a user might pick. The limit of a
tandem row is the unsync row with the SAME parameters (in particular the same inner map,
param `map`, and the same n; it may lack a parameter only tandem has, like publish_every) at
the same thread count -- never a differently built map; when there is none, or several, the
page says so instead of picking one.

Every cell is the median over the repetitions with its spread s = (max - min) / median, shown
as "±(s/2)"; a cell with s above 25% is marked †, one where a repetition timed fewer than 10
iterations ‡. Ratios: when the repetitions were run in interleaved rounds (one process
per round running every benchmark once, in random order: run_benchmarks.py's default), the
ratio is the median of the per-round ratios and its spread is theirs; otherwise it is the ratio
of the medians and its spread the sum of the two spreads. bench/targets.json lists the ratios
issues 14 and 17 set as targets; the page computes each one ("met"/"missed" when every
repetition's ratio -- unpaired: the whole ± range -- is on one side of the target, "within
noise" otherwise), or says "not measured" / "ambiguous" and why.

Standard library only, plus matplotlib for the plots (Debian: python3-matplotlib); without
matplotlib the tables are still written and the page says the plots are missing.
"""
import argparse
import collections
import datetime
import json
import os
import pathlib
import platform
import re
import statistics
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
SPREAD_MARK_LIMIT = 0.25  # a cell whose repetitions spread more than this is marked
MARK = "†"
FEW_ITERATIONS = 10  # a repetition with fewer timed iterations is marked FEW_MARK
FEW_MARK = "‡"

# Why tandem loses where it is expected to; quoted on the page when a ratio is below 1.
# Keep to what this page's own tables back; the lead rewrites these after the final run.
EXPLANATIONS = {
    "lookup guard_per_lookup": ("A guard per lookup costs tandem its reader-epoch announcement on "
                                "every lookup (see the instruction counts above); the portable-"
                                "fence variant also pays a full fence per guard, which is why the "
                                "asymmetric fence is the default. At N = 1,000,000 every lookup is "
                                "a cache miss and the gaps between maps are mostly memory layout: "
                                "compare each tandem row with its limit (the same inner map)."),
    "lookup guard_per_64": ("As for guard_per_lookup: at N = 1,000,000 compare with the limit of "
                            "the same inner map; gaps within the spread of either cell are ties."),
    "reads_with_writer": ("With a writer publishing every 64 ops, each publish of tandem's writer "
                          "waits for readers to leave the copy it writes next and, with the "
                          "asymmetric fence, may interrupt the reader cores; xenium's left_right "
                          "pays its reader counters on every read instead. The writer's own "
                          "ops/s (writer_ops_per_second) is listed too: with one reader thread it "
                          "is the issue's row (bench/targets.json); with two reader threads the "
                          "writer is a third thread on a 2-core machine and tandem's falls far "
                          "below xenium's. Not profiled yet; the guess to test first is a reader "
                          "descheduled inside its guard, which the next publish must wait out "
                          "(a scheduler time slice) and which xenium's writer also waits for, "
                          "so the guess alone does not explain the gap."),
    "mix": ("double_buffer_map has one writer by design: writes from several threads serialise "
            "on the mutex around it, every write is applied to both copies (once now, once "
            "replayed after the next publish), and each publish must wait for readers to leave "
            "the copy it will write next. Maps built for concurrent writers (TBB, libcuckoo, "
            "rculfhash) pay none of that, so they win as the write share grows."),
    "lock_pair": ("With more threads than cores and a holder that yields inside its critical "
                  "section, a small_mutex sleeper that was woken stays counted until it runs, and "
                  "unlocks meanwhile make FUTEX_WAKE calls that find nobody "
                  "(sync/striped_lock.hpp). "
                  "In separate runs of the same case beside another busy process (2026-12-04, a "
                  "nice -n 19 busy loop) small_mutex fell below std::mutex (2.5-3.2 M against "
                  "3.7-4.7 M lock pairs per second); without the yields it is about 2x std::mutex."),
}

# Implementations named without the "tandem" prefix in their benchmarks, and share-nothing
# controls that play the part of the physical limit.
TANDEM_NAMES = {"rc_map", "small_mutex"}
LIMIT_NAMES = {"control_private_rc_map_per_thread"}
TIME_SUFFIXES = ("real_time", "process_time", "manual_time")


def load_plt():
    for attempt in range(2):
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
            return plt
        except ImportError:
            # Debian's python3-matplotlib lives outside a pyenv/venv interpreter's path.
            debian = "/usr/lib/python3/dist-packages"
            if attempt or not os.path.isdir(debian) or debian in sys.path:
                return None
            sys.path.append(debian)
    return None


# ---- names -----------------------------------------------------------------------------------

def base_name(run_name):
    """The run name without /real_time, /iterations:, /repeats: and /threads:T."""
    parts = [p for p in run_name.split("/")
             if p not in TIME_SUFFIXES and not p.startswith(("threads:", "iterations:", "repeats:"))]
    return "/".join(parts)


def parse_name(run_name):
    """(workload words, params, implementation, threads) of a Google Benchmark run name.

    The implementation is the last plain word (the workload is every plain word before it).
    Bare numbers are positional parameters: the first is n, the next arg2, arg3, ...
    """
    words, params = [], {}
    threads = 1
    for part in run_name.split("/"):
        if part in TIME_SUFFIXES or part.startswith(("iterations:", "repeats:")):
            continue
        if part.startswith("threads:"):
            threads = int(part.split(":", 1)[1])
        elif ":" in part:
            key, value = part.split(":", 1)
            params[key] = value
        elif re.fullmatch(r"-?[0-9]+", part):
            params["n" if "n" not in params else f"arg{len(params) + 1}"] = part
        else:
            words.append(part)
    impl = words.pop() if len(words) > 1 else "?"
    return words, params, impl, threads


def kind_of(impl):
    if impl.startswith("tandem") or impl in TANDEM_NAMES:
        return "tandem"
    if "unsync" in impl or impl in LIMIT_NAMES:
        return "limit"
    return "baseline"


# ---- statistics ------------------------------------------------------------------------------

def spread_of(values):
    """(max - min) / median of a list of repetitions; None below 2 repetitions."""
    if len(values) < 2:
        return None
    med = statistics.median(values)
    return (max(values) - min(values)) / med if med else None


class Series:
    """One benchmark at one thread count: a value per repetition (key: repetition index)."""

    def __init__(self, program, run_name):
        self.program = program
        self.run_name = run_name
        self.base = base_name(run_name)
        self.words, self.params, self.impl, self.threads = parse_name(run_name)
        self.workload = " ".join(self.words)
        self.reps = {}          # counter -> {repetition: value}
        self.aggregate = {}     # counter -> median from an aggregate row (no repetitions kept)
        self.iterations = []    # timed iterations of each repetition
        self.error = None

    def few_iterations(self):
        return bool(self.iterations) and min(self.iterations) < FEW_ITERATIONS

    def values(self, counter):
        return list(self.reps.get(counter, {}).values())

    def median(self, counter):
        vals = self.values(counter)
        if vals:
            return statistics.median(vals)
        return self.aggregate.get(counter)

    def spread(self, counter):
        return spread_of(self.values(counter))

    def has(self, counter):
        return self.median(counter) is not None


def entry_counters(entry):
    """Counters of one JSON row: every numeric user counter, plus items_per_second (or, for a
    benchmark that sets none, 1 / real_time as ops per second)."""
    out = {}
    skip = {"iterations", "real_time", "cpu_time", "repetitions", "repetition_index", "threads",
            "family_index", "per_family_instance_index"}
    for key, value in entry.items():
        if key not in skip and isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = float(value)
    if "items_per_second" not in out and "real_time" in entry:
        unit = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[entry.get("time_unit", "ns")]
        if float(entry["real_time"]) > 0:
            out["items_per_second"] = 1.0 / (float(entry["real_time"]) * unit)
    return out


def load_results(results_dir):
    """{(program, run_name): Series}, contexts, run facts."""
    series = collections.OrderedDict()
    contexts = {}
    facts = {"paired": {}, "repetitions": {}}
    for path in sorted(pathlib.Path(results_dir).glob("*.json")):
        if path.name in ("perf.json", "run_info.json"):
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            print(f"report.py: skipping {path}: {err}", file=sys.stderr)
            continue
        if not isinstance(data, dict) or "benchmarks" not in data:
            continue
        program = path.stem
        contexts[program] = data.get("context", {})
        run = data.get("tandem_run", {})
        facts["paired"][program] = run.get("interleave") == "rounds"
        reps_seen = set()
        for entry in data.get("benchmarks", []):
            run_name = entry.get("run_name", entry.get("name", "?"))
            key = (program, run_name)
            s = series.get(key)
            if s is None:
                s = series[key] = Series(program, run_name)
            if entry.get("error_occurred"):
                s.error = entry.get("error_message", "error")
                continue
            if entry.get("run_type") == "aggregate":
                if entry.get("aggregate_name") == "median":
                    for counter, value in entry_counters(entry).items():
                        s.aggregate[counter] = value
                continue
            rep = int(entry.get("repetition_index", 0))
            reps_seen.add(rep)
            if isinstance(entry.get("iterations"), int):
                s.iterations.append(entry["iterations"])
            for counter, value in entry_counters(entry).items():
                s.reps.setdefault(counter, {})[rep] = value
        facts["repetitions"][program] = run.get("rounds") or (max(reps_seen) + 1 if reps_seen else
                                                                 None)
    return series, contexts, facts


def ratio(num, den, num_counter, den_counter, paired):
    """(ratio, spread, method, low, high) of num / den; None when either side is missing.

    Paired: the median of the per-repetition ratios, their spread, their min and max.
    Unpaired: the ratio of the medians, spread = the sum of both spreads, low/high = the ratio
    -/+ half that spread."""
    if num is None or den is None:
        return None
    a, b = num.reps.get(num_counter, {}), den.reps.get(den_counter, {})
    common = sorted(set(a) & set(b))
    if paired and len(common) >= 2 and all(b[r] for r in common):
        per_rep = [a[r] / b[r] for r in common]
        return (statistics.median(per_rep), spread_of(per_rep), "paired", min(per_rep),
                max(per_rep))
    na, nb = num.median(num_counter), den.median(den_counter)
    if na is None or not nb:
        return None
    sa, sb = num.spread(num_counter), den.spread(den_counter)
    spread = None if sa is None or sb is None else sa + sb
    value = na / nb
    half = (spread or 0.0) / 2
    return value, spread, "medians", value * (1 - half), value * (1 + half)


# ---- formatting ------------------------------------------------------------------------------

def human(value):
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.1f} {suffix}"
    return f"{value:.1f} "


def fmt_spread(spread):
    if spread is None:
        return ""
    mark = f" {MARK}" if spread > SPREAD_MARK_LIMIT else ""
    half = spread * 50
    return (f" ±{half:.0f}%" if half < 1000 else " ±>999%") + mark


def cell(s, counter="items_per_second"):
    if s is None:
        return "—"
    if s.error:
        return "error"
    med = s.median(counter)
    if med is None:
        return "—"
    few = f" {FEW_MARK}" if s.few_iterations() else ""
    return f"{human(med)}/s{fmt_spread(s.spread(counter))}{few}"


def ratio_cell(r, suffix=""):
    if r is None:
        return "—"
    value, spread = r[0], r[1]
    digits = 2 if value < 100 else 0
    return f"{value:.{digits}f}×{fmt_spread(spread)}{suffix}"


# ---- targets ---------------------------------------------------------------------------------

def match_params(spec_params, params):
    for key, wanted in spec_params.items():
        options = wanted if isinstance(wanted, list) else [wanted]
        have = params.get(key)
        if not any((o is None and have is None) or (o is not None and have == str(o))
                   for o in options):
            return False
    return True


def select(series, spec, inherit=None):
    """The Series a target selector names, or (None, why).

    A selector gives the benchmark by `name` (exact, without /real_time and /threads:T), by
    `regex` (full match on that name), or by `workload` + `impl` (or `impl_regex`) + `params`
    (each listed param must match; a list offers alternatives, null meaning "absent"); plus
    `threads` (default 1), `counter` (default items_per_second) and optionally `program`.
    Several matches: the one with the highest median if `pick` is "best", else ambiguous.
    With no name/regex/workload the selector names the `inherit` benchmark (same benchmark,
    e.g. at another thread count).
    """
    threads = int(spec.get("threads", 1))
    counter = spec.get("counter", "items_per_second")
    program = spec.get("program")

    def ok(s):
        if s.threads != threads or (program and s.program != program) or s.error:
            return False
        if "name" in spec:
            return s.base == spec["name"]
        if "regex" in spec:
            return re.fullmatch(spec["regex"], s.base) is not None
        if "workload" in spec:
            if s.workload != spec["workload"].replace("/", " "):
                return False
            if "impl" in spec and s.impl != spec["impl"]:
                return False
            if "impl_regex" in spec and not re.fullmatch(spec["impl_regex"], s.impl):
                return False
            return match_params(spec.get("params", {}), s.params)
        if inherit is not None:
            return s.program == inherit.program and s.base == inherit.base
        return False

    found = [s for s in series.values() if ok(s) and s.has(counter)]
    if not found:
        return None, "not measured"
    if len(found) > 1:
        if spec.get("pick") != "best":
            return None, "ambiguous: " + ", ".join(sorted(f"`{s.base}`" for s in found))
        found.sort(key=lambda s: s.median(counter), reverse=True)
    return found[0], None


def target_rows(series, facts, targets):
    rows = []
    for t in targets:
        num_spec, den_spec = t["numerator"], t["denominator"]
        num, why_num = select(series, num_spec)
        den, why_den = select(series, den_spec, inherit=num) if num else (None, why_num)
        goal = float(t["target"])
        row = {"description": t["description"], "issue": t.get("issue"), "now": t.get("now", ""),
               "target": goal, "num": num, "den": den}
        if num is None or den is None:
            row["status"] = why_num or why_den
            rows.append(row)
            continue
        paired = facts["paired"].get(num.program, False) and facts["paired"].get(den.program, False)
        r = ratio(num, den, num_spec.get("counter", "items_per_second"),
                  den_spec.get("counter", "items_per_second"), paired)
        if r is None:
            row["status"] = "not measured"
        else:
            row["ratio"] = r
            if r[3] >= goal:
                row["status"] = "met"
            elif r[4] < goal:
                row["status"] = "missed"
            else:
                # Rounds on both sides of the target: no verdict, only where the median fell.
                row["status"] = ("undecided (median above)" if r[0] >= goal
                                 else "undecided (median below)")
        rows.append(row)
    return rows


def describe(s, spec):
    counter = spec.get("counter", "items_per_second")
    extra = "" if counter == "items_per_second" else f" [{counter}]"
    return f"`{s.base}` ({s.threads} thr){extra}" if s else "—"


# ---- perf (instruction counts) ---------------------------------------------------------------

def perf_section(results_dir, run_info):
    path = pathlib.Path(results_dir) / "perf.json"
    lines = ["## Instructions per operation (callgrind)", ""]
    if not path.exists():
        why = (run_info.get("perf") or {}).get("status", "perf.json is absent from the results")
        lines += [f"*Not measured in this run: {why}.* The table comes from "
                  "`python3 tests/perf/run_perf.py --build-dir <a build with TANDEM_BUILD_TESTS=ON> "
                  "--json <results>/perf.json`, which `bench/run_benchmarks.py` runs when it finds "
                  "such a build (`--perf-build-dir`).", ""]
        return lines
    try:
        data = json.loads(path.read_text())
    except ValueError as err:
        return lines + [f"*perf.json unreadable: {err}.*", ""]
    lines += ["Instructions executed per operation, counted by `valgrind --tool=callgrind` as the "
              "difference of two run lengths (set-up cancels); deterministic, so each budget is a "
              "hard CTest (label `perf`). Budgets: tests/perf/budgets.json. "
              f"Compiler: {data.get('compiler', '?')}.", "",
              "The budget stops regressions; where an issue set a stricter target, the last column "
              "says whether it is met (computed from the same counts).", "",
              "| operation | instructions / op | baseline | baseline instr. / op | budget | limit | pass "
              "| issue target |",
              "|---|---:|---|---:|---|---:|:---:|---|"]

    def num(value):
        return f"{value:.1f}" if isinstance(value, (int, float)) else "—"

    def target_cell(r):
        if "target" not in r:
            return "—"
        return f"{r['target']}: " + ("met" if r.get("target_met") else "**missed**")

    for r in data.get("results", []):
        passed = r.get("pass")
        if r.get("skipped"):
            verdict = f"skipped: {r['skipped']}"
        elif r.get("error"):
            verdict = f"**no**: {r['error']}"
        else:
            verdict = "yes" if passed else ("—" if passed is None else "**no**")
        lines.append(f"| {r.get('name', '?')} | {num(r.get('instructions'))} | "
                     f"{r.get('baseline_name') or '—'} | {num(r.get('baseline_instructions'))} | "
                     f"{r.get('budget') or '—'} | {num(r.get('limit'))} | "
                     f"{verdict} | {target_cell(r)} |")
    lines.append("")
    return lines


# ---- machine ---------------------------------------------------------------------------------

def cmake_cache(build_dir):
    values = {}
    cache = pathlib.Path(build_dir) / "CMakeCache.txt"
    if cache.exists():
        for line in cache.read_text(errors="replace").splitlines():
            m = re.match(r"^([A-Za-z0-9_]+):[A-Z]+=(.*)$", line)
            if m:
                values[m.group(1)] = m.group(2)
    return values


def machine_facts(build_dir, contexts, cache):
    facts = []
    cpu = "unknown"
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    facts.append(f"CPU: {cpu}; {os.cpu_count()} logical cores; {platform.system()} "
                 f"{platform.release()}")
    compiler = cache.get("CMAKE_CXX_COMPILER", "c++")
    try:
        version = subprocess.run([compiler, "--version"], capture_output=True, text=True,
                                 check=False).stdout.splitlines()[0]
    except (OSError, IndexError):
        version = compiler
    flags = " ".join(x for x in (cache.get("CMAKE_CXX_FLAGS", ""),
                                 cache.get("CMAKE_CXX_FLAGS_RELEASE", "")) if x)
    facts.append(f"Compiler: {version}; build type {cache.get('CMAKE_BUILD_TYPE', '?')}; "
                 f"flags `{flags or '(none)'} -std=c++20`")
    if contexts:
        ctx = next(iter(contexts.values()))
        facts.append(f"Google Benchmark library build: {ctx.get('library_build_type', '?')}; "
                     f"CPU scaling enabled: {ctx.get('cpu_scaling_enabled', '?')}")
        loads = [f"{p} {c['load_avg'][0]:.2f}" for p, c in contexts.items() if c.get("load_avg")]
        if loads:
            facts.append("1-minute load average when each program started (first round): "
                         + ", ".join(loads))
    return facts


def peers_line(cache):
    def found(var):
        value = cache.get(var, "")
        return bool(value) and not value.endswith("-NOTFOUND") and value.upper() not in (
            "0", "FALSE", "OFF", "NO")

    peers = [("TBB", found("TBB_DIR") and "NOTFOUND" not in cache.get("TBB_DIR", "")),
             ("libcuckoo", found("TANDEM_LIBCUCKOO_INCLUDE")),
             ("xenium", found("TANDEM_XENIUM_INCLUDE")),
             ("liburcu", found("TANDEM_URCU_CDS_LIB") and found("TANDEM_URCU_MEMB_LIB")),
             ("boost::unordered_flat_map", found("TANDEM_BOOST_FLAT_MAP_INCLUDE")
              or found("TANDEM_BOOST_FLAT_INCLUDE")),
             ("absl::flat_hash_map", found("absl_DIR"))]
    if not cache:
        return "Which peers were compiled in is unknown (no CMakeCache.txt in the build directory)."
    have = [n for n, ok in peers if ok]
    missing = [n for n, ok in peers if not ok]
    return ("Compiled into this run: " + (", ".join(have) or "none") + "; absent: "
            + (", ".join(missing) or "none") + ".")


def mix_plots(plt, plot_dir, program, mix_groups):
    """One figure per mix group: throughput against the write share, a panel per thread count."""
    lines = []
    for group, by_mix in mix_groups.items():
        mixes = sorted(by_mix)
        impl_rows = list(dict.fromkeys(r for m in mixes for r in by_mix[m][0]))
        thread_counts = sorted({t for m in mixes for (_, t) in by_mix[m][1]})
        label = ", ".join(f"{k}={v}" for k, v in group)
        fig, axes = plt.subplots(1, len(thread_counts), figsize=(5 * len(thread_counts), 3.5),
                                 squeeze=False)
        palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        colour = {r: palette[i % len(palette)] for i, r in enumerate(impl_rows)}
        for ax, t in zip(axes[0], thread_counts):
            for r in impl_rows:
                xs = [m for m in mixes if (r, t) in by_mix[m][1]
                      and by_mix[m][1][(r, t)].has("items_per_second")]
                if xs:
                    ax.plot([f"{1000 - m}/{m}" for m in xs],
                            [by_mix[m][1][(r, t)].median("items_per_second") for m in xs],
                            marker="o", label=r[0] + (f" [map:{r[1]}]" if r[1] else ""),
                            color=colour[r])
            ax.set_yscale("log")
            ax.set_xlabel("reads/writes per 1000 ops")
            ax.set_ylabel("ops / s (median)")
            ax.set_title(f"mix, {label}, {t} thread(s)", fontsize=9)
            ax.legend(fontsize=6)
        fig.tight_layout()
        name = re.sub(r"[^A-Za-z0-9]+", "_", f"{program}_mix_{label}").strip("_")
        fig.savefig(plot_dir / f"{name}.png", dpi=90)
        plt.close(fig)
        lines += [f"![mix {label}](benchmarks/{name}.png)", ""]
    return lines


# ---- the page --------------------------------------------------------------------------------

def sort_key_params(params):
    def conv(v):
        return (0, int(v)) if re.fullmatch(r"-?[0-9]+", v) else (1, v)
    return tuple((k, conv(v)) for k, v in sorted(params.items()))


def build_page(results_dir, output, build_dir, targets_path, plt):
    series, contexts, facts = load_results(results_dir)
    info_path = pathlib.Path(results_dir) / "run_info.json"
    run_info = json.loads(info_path.read_text()) if info_path.exists() else {}
    cache = cmake_cache(build_dir)
    plot_dir = output.parent / "benchmarks"
    if plt is not None:
        plot_dir.mkdir(parents=True, exist_ok=True)
    any_paired = any(facts["paired"].values())

    lines = ["# tandem benchmarks", "",
             "Generated by `python3 bench/run_benchmarks.py` from Google Benchmark JSON and "
             "callgrind counts; do not edit by hand. That one command builds what it needs and "
             "regenerates this page on your own machine; `--no-run` rebuilds it from the last "
             "JSON, `--only`/`--filter` narrow a run (see `--help`).", ""]
    command = run_info.get("command")
    if command:
        lines += [f"Last run: `{command}`" + (f" ({run_info['duration_s'] / 60:.0f} min)"
                                               if run_info.get("duration_s") else "") + ".", ""]
    commands = dict(run_info.get("program_commands", {}))
    if (run_info.get("perf") or {}).get("command"):
        commands["perf table"] = run_info["perf"]["command"]
    if commands:
        lines += ["<details><summary>Each program's command line</summary>", ""]
        lines += [f"- {name}: `{cmd}`" for name, cmd in commands.items()]
        lines += ["", "</details>", ""]
    lines += [
        "**How to read it.** Throughput is items per second (higher is better; over wall-clock "
        "time for benchmarks named .../real_time, over CPU time for the others; "
        "with 2 threads it is both threads' total). Each cell is the **median** over the "
        "repetitions followed by its spread: **±x% means max − min over the repetitions is 2x% "
        f"of the median**; a cell whose max − min exceeds {SPREAD_MARK_LIMIT:.0%} of its "
        f"median (beyond ±{SPREAD_MARK_LIMIT * 50:g}%) is marked **{MARK}**: do not read "
        f"anything into its digits. **{FEW_MARK}** marks a cell where a repetition timed fewer "
        f"than {FEW_ITERATIONS} iterations (Google Benchmark stops growing the iteration count "
        "once one run lasts --benchmark_min_time, so a slow first iteration -- thread start, "
        "a cold cache, a stall -- becomes the whole measurement). "
        + ("Repetitions were run in **interleaved rounds**: each round is one process of each "
           "program that runs every benchmark once, in a fresh random order "
           "(`--benchmark_enable_random_interleaving`), so a ratio is the **median of the "
           "per-round ratios** (both sides measured minutes apart at most) and its ± is the "
           "spread of those per-round ratios. " if any_paired else
           "Repetitions were not paired in rounds, so a ratio is the **ratio of the medians** and "
           "its ± is the sum of both cells' ±. ")
        + "*vs best baseline* divides tandem's cell by the best non-tandem synchronised "
        "implementation at the same thread count; *vs limit* divides it by the unsynchronised "
        "implementation with the same parameters -- the **same inner map** (`map`) and the same "
        "N -- at the same thread count, and is left out when this run has no such row. The "
        "machine below is shared and noisy: compare ratios within one run, not absolute "
        "numbers across runs.", "",
        "## Machine", ""]
    lines += [f"- {fact}" for fact in machine_facts(build_dir, contexts, cache)]
    reps = facts["repetitions"]
    if reps:
        lines.append("- repetitions (and start of the first) per program: " + ", ".join(
            f"{p}: {r} ({contexts.get(p, {}).get('date', '?')[:16]})" for p, r in reps.items()))
    for failure in run_info.get("failures", []):
        lines.append(f"- **failed:** {failure}")
    lines.append("")
    if plt is None:
        lines += ["*Plots missing: matplotlib was not importable (Debian: "
                  "`apt-get install python3-matplotlib`).*", ""]

    # Targets first: the questions the issues ask.
    targets = []
    if targets_path and pathlib.Path(targets_path).exists():
        targets = json.loads(pathlib.Path(targets_path).read_text()).get("targets", [])
    if targets:
        lines += ["## Targets (issues 14 and 17)", "",
                  "Each row divides the first benchmark by the second (items per second unless a "
                  "counter is named), same run. *then* is the figure the issue quoted when it was "
                  "filed; *measured* is this run's ratio with its ± as defined above. **met** / "
                  "**missed**: every repetition's ratio is above / below the target (unpaired: "
                  "the whole ± range); *undecided*: the target lies inside that range (some "
                  "repetitions above it, some below), with the side the median fell on; count it "
                  "as neither met nor missed. Rows come from bench/targets.json.", "",
                  "| workload | numerator | denominator | issue | then | target | measured | |",
                  "|---|---|---|---|---:|---:|---:|:---:|"]
        for row, t in zip(target_rows(series, facts, targets), targets):
            measured = ratio_cell(row.get("ratio")) if "ratio" in row else row["status"]
            status = row["status"] if "ratio" in row else "—"
            if status.startswith("missed"):
                status = f"**{status}**"
            lines.append(f"| {row['description']} | {describe(row['num'], t['numerator'])} | "
                         f"{describe(row['den'], t['denominator'])} | {row['issue'] or ''} | "
                         f"{row['now']} | ≥ {row['target']:g}× | {measured} | {status} |")
        lines.append("")
        # Each target row may carry a `why`: the profile behind a miss (bench/targets.json).
        reasons = [(row, t) for row, t in zip(target_rows(series, facts, targets), targets)
                   if t.get("why") and not row["status"].startswith("met")]
        if reasons:
            lines += ["Why a target is not met (from the profiles named; bench/targets.json):", ""]
            for row, t in reasons:
                lines.append(f"- *{row['description']}*: {t['why']}")
            lines.append("")

    lines += perf_section(results_dir, run_info)

    # Wall-clock tables: per program, per workload + params (without map), rows (impl, map).
    by_program = collections.OrderedDict()
    memory = collections.OrderedDict()
    errors = collections.OrderedDict()
    for s in series.values():
        if s.error:
            errors.setdefault(s.program, []).append(s)
            continue
        if s.has("bytes_per_entry"):
            memory[s.impl + (f" (map:{s.params['map']})" if "map" in s.params else "")] = s
            continue
        table_params = {k: v for k, v in s.params.items() if k != "map"}
        key = (s.workload, tuple(sorted(table_params.items())))
        by_program.setdefault(s.program, collections.OrderedDict()).setdefault(key, []).append(s)

    # A limit row without a parameter that only tandem has (writer/unsync/map:m/n:N against
    # writer/tandem_*/map:m/n:N/publish_every:P) is the limit of every table whose parameters
    # extend its own: it is shown there too, and its own table dropped when nothing else is in it.
    for tables in by_program.values():
        absorbed = set()
        for (workload, params), members in tables.items():
            if not any(kind_of(s.impl) == "tandem" for s in members):
                continue
            mine = dict(params)
            own = {(s.impl, s.params.get("map")) for s in members}
            for (w2, p2), others in tables.items():
                if w2 != workload or p2 == params or not set(dict(p2)) < set(mine) or any(
                        mine[k] != v for k, v in p2):
                    continue
                for s in others:
                    if kind_of(s.impl) == "limit" and (s.impl, s.params.get("map")) not in own:
                        members.append(s)
                        absorbed.add((w2, p2))
        for key in absorbed:
            if all(kind_of(s.impl) == "limit" for s in tables[key]):
                del tables[key]
    for program in errors:
        by_program.setdefault(program, collections.OrderedDict())
    losses = []
    for program, tables in by_program.items():
        lines += [f"## {program}", ""]
        mix_groups = {}
        for s in errors.get(program, []):
            lines.append(f"- `{s.run_name}`: **error** -- {s.error}")
        if errors.get(program):
            lines.append("")
        for (workload, params), members in sorted(
                tables.items(), key=lambda kv: (kv[0][0], sort_key_params(dict(kv[0][1])))):
            thread_counts = sorted({s.threads for s in members})
            rows = list(dict.fromkeys((s.impl, s.params.get("map")) for s in members))
            # Baselines first, then per inner map its limit followed by tandem's rows over it.
            rows.sort(key=lambda r: (kind_of(r[0]) != "baseline", r[1] or "",
                                     {"baseline": 0, "limit": 0, "tandem": 1}[kind_of(r[0])], r[0]))
            grid = {((s.impl, s.params.get("map")), s.threads): s for s in members}
            counters = ["items_per_second"] + sorted(
                {c for s in members for c in list(s.reps) + list(s.aggregate)
                 if c.endswith("_per_second") and c != "items_per_second"})
            title = workload + ("" if not params else " (" + ", ".join(
                f"{k}={v}" for k, v in params) + ")")
            lines += [f"### {title}", ""]
            notes = []
            header = "| implementation | " + " | ".join(
                f"{t} thr" + ("" if c == "items_per_second" else f" {c}")
                for c in counters for t in thread_counts) + " |"
            lines += [header, "|---|" + "---:|" * (len(thread_counts) * len(counters))]

            def label(row):
                impl, inner = row
                return impl + (f" [map:{inner}]" if inner is not None else "")

            for row in rows:
                lines.append(f"| {label(row)} | " + " | ".join(
                    cell(grid.get((row, t)), c) for c in counters for t in thread_counts) + " |")
            limit_rows = [r for r in rows if kind_of(r[0]) == "limit"]
            for inner in dict.fromkeys(r[1] for r in rows if kind_of(r[0]) == "tandem"):
                same = [r for r in limit_rows if r[1] == inner]
                if len(same) > 1:
                    notes.append(f"No *vs limit* over map `{inner or 'unnamed'}`: "
                                 + ", ".join(f"`{r[0]}`" for r in same) + " are all "
                                 "unsynchronised rows without a `map` parameter that would say "
                                 "which one is the same inner map as tandem's.")
            for row in (r for r in rows if kind_of(r[0]) == "tandem"):
                best_cells, limit_cells, any_best, any_limit = [], [], False, False
                for c in counters:
                    for t in thread_counts:
                        mine = grid.get((row, t))
                        candidates = [s for (r, tt), s in grid.items() if tt == t
                                      and kind_of(r[0]) == "baseline" and s.has(c)]
                        best = max(candidates, key=lambda s: s.median(c), default=None)
                        paired = facts["paired"].get(program, False)
                        r = ratio(mine, best, c, c, paired) if mine and best else None
                        any_best |= r is not None
                        best_cells.append("—" if r is None else ratio_cell(r, f" ({best.impl})"))
                        # Every counter, not only items per second: a writer's ops/s beside
                        # the readers' (reads_with_writer) is a loss a reader must see too.
                        if r is not None and r[0] < 1.0:
                            losses.append((program, title, t, label(row), best.impl, r, workload,
                                           c))
                        limits = [s for (rr, tt), s in grid.items() if tt == t
                                  and kind_of(rr[0]) == "limit" and rr[1] == row[1]]
                        lim = limits[0] if len(limits) == 1 else None
                        r = ratio(mine, lim, c, c, paired) if mine and lim else None
                        any_limit |= r is not None
                        limit_cells.append("—" if r is None else ratio_cell(r, f" ({lim.impl})"))
                if any_best:
                    lines.append(f"| *{label(row)} vs best baseline* | " + " | ".join(best_cells)
                                 + " |")
                if any_limit:
                    lines.append(f"| *{label(row)} vs limit (same map, same N)* | "
                                 + " | ".join(limit_cells) + " |")
            lines.append("")
            lines += [f"Note: {n}" for n in notes] + ([""] if notes else [])
            pdict = dict(params)
            if workload == "mix" and "writes_per_mille" in pdict:
                group = tuple((k, v) for k, v in params if k != "writes_per_mille")
                mix_groups.setdefault(group, {})[int(pdict["writes_per_mille"])] = (rows, grid)
            elif plt is not None and len(members) > 1 and len(thread_counts) > 1:
                name = re.sub(r"[^A-Za-z0-9]+", "_", f"{program}_{title}").strip("_")
                fig, ax = plt.subplots(figsize=(6, 3.5))
                for row in rows:
                    xs = [t for t in thread_counts if (row, t) in grid
                          and grid[(row, t)].has("items_per_second")]
                    if not xs:
                        continue
                    meds = [grid[(row, t)].median("items_per_second") for t in xs]
                    lows = [m - min(grid[(row, t)].values("items_per_second") or [m])
                            for m, t in zip(meds, xs)]
                    highs = [max(grid[(row, t)].values("items_per_second") or [m]) - m
                             for m, t in zip(meds, xs)]
                    ax.errorbar(xs, meds, yerr=[lows, highs], marker="o", capsize=3,
                                label=label(row))
                ax.set_xlabel("threads")
                ax.set_ylabel("items / s (median, bars: min-max)")
                ax.set_xticks(thread_counts)
                ax.set_title(title, fontsize=9)
                ax.legend(fontsize=6)
                fig.tight_layout()
                fig.savefig(plot_dir / f"{name}.png", dpi=90)
                plt.close(fig)
                lines += [f"![{title}](benchmarks/{name}.png)", ""]

        if plt is not None:
            lines += mix_plots(plt, plot_dir, program, mix_groups)

    if memory:
        lines += ["## Memory per entry", "",
                  "Heap bytes in use (glibc `mallinfo2`) after building the map minus before, "
                  "divided by N.", "", "| implementation | bytes / entry | vs std::unordered_map |",
                  "|---|---:|---:|"]
        base = next((s for k, s in memory.items() if k.startswith("std_unordered_map_unsync")),
                    None)
        for impl, s in memory.items():
            value = s.median("bytes_per_entry")
            rel = f"{value / base.median('bytes_per_entry'):.2f}×" if base else "—"
            lines.append(f"| {impl} | {value:.1f} | {rel} |")
        lines.append("")

    lines += ["## Where tandem loses", ""]
    if not losses:
        lines += ["Nowhere in this run: every tandem cell is at or above the best baseline.", ""]
    else:
        clear = [loss for loss in losses if loss[5][4] < 1.0]
        noisy = [loss for loss in losses if loss[5][4] >= 1.0]
        for heading, group in (("Below its best baseline in every repetition (paired) or beyond "
                                "the ± range (unpaired)", clear),
                               ("Below by the median only: within noise", noisy)):
            if not group:
                continue
            lines += [f"{heading}:", ""]
            for program, title, t, impl, best, r, workload, counter in group:
                what = "" if counter == "items_per_second" else f" ({counter})"
                lines.append(f"- {program} / {title}, {t} thread(s){what}: {impl} at "
                             f"{ratio_cell(r)} of {best}.")
            lines.append("")
        for workload in dict.fromkeys(loss[6] for loss in losses):
            if workload in EXPLANATIONS:
                lines += [f"Why ({workload}): {EXPLANATIONS[workload]}", ""]

    lines += ["## Peers", "",
              "Found at configure time when installed (Debian packages `libtbb-dev`, "
              "`libcuckoo-dev`, `libxenium-dev`, `liburcu-dev`, `libboost1.81-dev`, "
              "`libabsl-dev`); a missing one is simply absent from the tables. "
              + peers_line(cache), "",
              f"_Generated {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC._", ""]
    if plt is not None:  # plots of benchmarks no longer run would mislead: remove them
        linked = set(re.findall(r"\(benchmarks/([^)]+\.png)\)", "\n".join(lines)))
        for stale in plot_dir.glob("*.png"):
            if stale.name not in linked:
                stale.unlink()
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("\n".join(lines))
    return lines


# ---- self-test -------------------------------------------------------------------------------

def self_test():
    """Synthetic JSON in, page out: checks spread marking, limit matching and targets."""
    def rows(name, values, threads=1, extra=None):
        out = []
        for rep, v in enumerate(values):
            entry = {"name": name, "run_name": name, "run_type": "iteration",
                     "repetition_index": rep, "threads": threads, "real_time": 1e9 / v,
                     "time_unit": "ns", "items_per_second": v}
            entry.update((extra or {}).get(rep, {}))
            out.append(entry)
        return out

    bench = []
    # 1 thread; unsync std and boost_flat; tandem over boost_flat; one noisy baseline.
    bench += rows("lookup/guard_per_lookup/unsync/n:1000/map:std/real_time", [100, 100, 100])
    bench += rows("lookup/guard_per_lookup/unsync/n:1000/map:boost_flat/real_time", [400, 400, 400])
    bench += rows("lookup/guard_per_lookup/tandem_asymmetric/n:1000/map:boost_flat/real_time",
                  [200, 300, 200])
    bench += rows("lookup/guard_per_lookup/mutex/n:1000/real_time", [50, 100, 100])  # noisy
    bench += rows("writer/unsync/map:std/n:1000", [100, 100, 100])
    bench += rows("writer/tandem_asymmetric/map:std/n:1000/publish_every:64", [40, 50, 60])
    bench += rows("churn/tandem/real_time/threads:1", [10, 20, 30])
    bench += rows("churn/hand_written/real_time/threads:1", [10, 10, 10])
    bench += rows("churn/tandem/real_time/threads:2", [30, 40, 60], threads=2)
    bench += rows("fan_out_8/tandem", [10, 11, 10], extra={0: {"iterations": 1}})
    bench += rows("fan_out_8/hand_written", [20, 20, 21])
    bench += rows("reads_with_writer/tandem_asymmetric/n:1000/map:std/real_time", [10, 10, 10],
                  extra={r: {"writer_ops_per_second": v} for r, v in enumerate([2, 4, 6])})
    bench += rows("reads_with_writer/tandem_portable_fence/n:1000/map:std/real_time", [10, 10, 10],
                  extra={r: {"writer_ops_per_second": 1.0} for r in range(3)})
    bench += rows("reads_with_writer/xenium_left_right/n:1000/real_time", [5, 5, 5],
                  extra={r: {"writer_ops_per_second": 4.0} for r in range(3)})
    targets = {"targets": [
        {"description": "paired churn", "now": "0.63×", "issue": 17, "target": 1.5,
         "numerator": {"name": "churn/tandem"}, "denominator": {"name": "churn/hand_written"}},
        {"description": "scaling", "target": 1.7,
         "numerator": {"name": "churn/tandem", "threads": 2}, "denominator": {"threads": 1}},
        {"description": "writer counter", "target": 1.0,
         "numerator": {"workload": "reads_with_writer", "impl": "tandem_asymmetric",
                       "params": {"map": ["std", None]}, "counter": "writer_ops_per_second"},
         "denominator": {"workload": "reads_with_writer", "impl_regex": "xenium.*",
                         "params": {"map": None}, "counter": "writer_ops_per_second"}},
        {"description": "clear miss", "target": 1.0,
         "numerator": {"name": "fan_out_8/tandem"}, "denominator": {"name": "fan_out_8/hand_written"}},
        {"description": "absent", "target": 2.0,
         "numerator": {"name": "nope/tandem"}, "denominator": {"name": "nope/other"}},
        {"description": "ambiguous", "target": 2.0,
         "numerator": {"regex": "lookup/guard_per_lookup/unsync/.*"},
         "denominator": {"name": "churn/hand_written"}},
    ]}
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        (tmp / "results").mkdir()
        (tmp / "results" / "fake_bench.json").write_text(json.dumps(
            {"context": {"library_build_type": "release"}, "benchmarks": bench,
             "tandem_run": {"interleave": "rounds", "rounds": 3}}))
        (tmp / "targets.json").write_text(json.dumps(targets))
        page = "\n".join(build_page(tmp / "results", tmp / "out" / "benchmarks.md", tmp,
                                    tmp / "targets.json", None))

        def expect(condition, what):
            if not condition:
                failures.append(what)

        def line_with(prefix):
            return next((l for l in page.splitlines() if l.startswith(prefix)), "")

        # Spread: mutex 50,100,100 -> (100-50)/100 = 50% -> ±25% and marked; unsync: ±0%.
        expect(f"| mutex | 100.0 /s ±25% {MARK} |" in page, "noisy cell not marked")
        expect("| unsync [map:std] | 100.0 /s ±0% |" in page, "quiet cell wrong")
        # tandem over boost_flat: median 200, range 100 -> ±25%, marked.
        expect(f"| tandem_asymmetric [map:boost_flat] | 200.0 /s ±25% {MARK} |" in page,
               "tandem cell")
        # Limit = unsync over the SAME map (400), never std (100): per-round 0.5, 0.75, 0.5.
        lim = line_with("| *tandem_asymmetric [map:boost_flat] vs limit")
        expect("0.50×" in lim and "unsync" in lim, f"limit row wrong: {lim!r}")
        # Targets: paired churn ratios 1, 2, 3 -> median 2.00, spread (3-1)/2 = 100% -> ±50% †.
        row = line_with("| paired churn |")
        expect(f"2.00× ±50% {MARK}" in row and "| undecided (median above) |" in row,
               f"paired target: {row!r}")
        # Scaling: 30/10, 40/20, 60/30 -> 3, 2, 2 -> median 2.00 >= 1.7.
        row = line_with("| scaling |")
        expect("2.00×" in row and "| met |" in row, f"scaling target: {row!r}")  # 2, 2, 3 >= 1.7
        # Writer counter: 2/4, 4/4, 6/4 -> median 1.00 -> met (>= 1.0).
        row = line_with("| writer counter |")
        expect("1.00×" in row and "| undecided (median above) |" in row
               and "writer_ops_per_second" in row,
               f"counter target: {row!r}")
        # A counter below the best baseline is a loss too (writer ops/s 1 against xenium's 4).
        expect("(writer_ops_per_second): tandem_portable_fence [map:std] at 0.25×" in page,
               "counter loss not listed under 'Where tandem loses'")
        row = line_with("| clear miss |")  # 0.5, 0.55, 0.48: every round below 1
        expect("0.50×" in row and "| **missed** |" in row, f"missed target: {row!r}")
        expect(f"| tandem | 10.0 /s ±5% {FEW_MARK} |" in page, "few iterations mark")
        expect("| hand_written | 20.0 /s ±2% |" in page, "few iterations mark misplaced")
        # The writer's limit has no publish_every: it is still the limit of the same map and n.
        lim = line_with("| *tandem_asymmetric [map:std] vs limit")
        expect("0.50×" in lim and "(unsync)" in lim, f"writer limit: {lim!r}")
        expect("### writer (n=1000)\n" not in page, "limit-only writer table left behind")
        row = line_with("| absent |")
        expect("not measured" in row and "| — |" in row, f"absent target: {row!r}")
        row = line_with("| ambiguous |")
        expect("ambiguous" in row, f"ambiguous target: {row!r}")
        expect("Not measured in this run" in page, "missing perf table not reported")
        # perf.json present -> the table.
        (tmp / "results" / "perf.json").write_text(json.dumps({"compiler": "GNU 12", "results": [
            {"name": "double_buffer_map/std/guarded_find", "instructions": 37.2,
             "baseline_name": "std/find", "baseline_instructions": 30.9,
             "budget": "baseline + 8", "limit": 38.9, "pass": True},
            {"name": "double_buffer_map/boost/guarded_find", "instructions": 70.1,
             "baseline_name": "boost/find", "baseline_instructions": 41.1,
             "budget": "baseline + 31", "limit": 72.1, "pass": True,
             "target": "baseline + 8 (issue 17 item 2)", "target_met": False}]}))
        page = "\n".join(build_page(tmp / "results", tmp / "out" / "benchmarks.md", tmp,
                                    tmp / "targets.json", None))
        expect("| double_buffer_map/std/guarded_find | 37.2 | std/find | 30.9 | baseline + 8 | "
               "38.9 | yes | — |" in page, "perf table row")
        # A budget that passes while the stricter target is missed says both.
        expect("| 72.1 | yes | baseline + 8 (issue 17 item 2): **missed** |" in page,
               "perf target column")
        # Unpaired (plain Google Benchmark repetitions): ratio of medians, spreads added.
        (tmp / "results" / "fake_bench.json").write_text(json.dumps(
            {"context": {}, "benchmarks": bench}))
        page = "\n".join(build_page(tmp / "results", tmp / "out" / "benchmarks.md", tmp,
                                    tmp / "targets.json", None))
        row = line_with("| paired churn |")  # medians 20 / 10, spreads 100% + 0%
        expect(f"2.00× ±50% {MARK}" in row, f"unpaired target: {row!r}")
        expect("ratio of the medians" in page, "unpaired method not stated")
    for f in failures:
        print(f"report.py self-test FAILED: {f}", file=sys.stderr)
    if not failures:
        print("report.py self-test passed")
    return 1 if failures else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", help="directory of *.json from run_benchmarks.py")
    parser.add_argument("--build-dir", default=str(ROOT / "build" / "release"),
                        help="the benchmarks' build (for compiler, flags and peers)")
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument("--targets", default=str(ROOT / "bench" / "targets.json"))
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--self-test", action="store_true",
                        help="check this script on synthetic data and exit")
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    if not args.results:
        parser.error("--results is required")
    output = pathlib.Path(args.output)
    build_page(args.results, output, args.build_dir, args.targets,
               None if args.no_plots else load_plt())
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
