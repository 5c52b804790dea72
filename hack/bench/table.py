#!/usr/bin/env python3
"""The markdown table of hack/bench.sh: the medians over rounds of what `pod-bench suite` wrote
(result-<runtime>-<steps>-<round>.json in --dir), one row per metric, containerd | crius |
crius/containerd. A ratio below 1 means crius is lower (faster, smaller)."""

import argparse
import glob
import json
import os
import statistics
import sys

RUNTIMES = ("containerd", "crius")


def load(directory):
    """{runtime: {steps: [result, ...]}} in round order."""
    found = {r: {} for r in RUNTIMES}
    for path in sorted(glob.glob(os.path.join(directory, "result-*.json"))):
        name = os.path.basename(path)[len("result-"):-len(".json")]
        runtime, steps, _round = name.split("-", 2)
        with open(path) as f:
            found.setdefault(runtime, {}).setdefault(steps, []).append(json.load(f))
    return found


def dig(doc, path):
    for key in path:
        if not isinstance(doc, dict) or key not in doc or doc[key] is None:
            return None
        doc = doc[key]
    return doc


def median(results, path):
    values = [v for v in (dig(r, path) for r in results) if isinstance(v, (int, float))]
    return statistics.median(values) if values else None


def fmt(value, unit):
    if value is None:
        return "?"
    if unit == "ms":
        return f"{value:.3g}" if value < 100 else f"{value:.0f}"
    if unit == "s":
        return f"{value:.3g} s" if value < 100 else f"{value:.0f} s"
    if unit == "MiB":
        mib = value / 1024
        return f"{mib:.3g} MiB" if mib < 100 else f"{mib:.0f} MiB"
    if unit == "KiB":
        return f"{value:.0f} KiB"
    return f"{value:g}"


def ratio(a, b):
    if a is None or b is None or a == 0:
        return "?"
    return f"{b / a:.2f}"


class Table:
    def __init__(self, data):
        self.data = data
        self.rows = []

    def results(self, runtime, steps):
        return self.data.get(runtime, {}).get(steps, [])

    def values(self, steps, path):
        return [median(self.results(r, steps), path) for r in RUNTIMES]

    def row(self, label, steps, path, unit):
        ctrd, crius = self.values(steps, path)
        self.rows.append((label, fmt(ctrd, unit), fmt(crius, unit), ratio(ctrd, crius)))

    def pair(self, label, steps, path, a, b, unit):
        """`a / b` in one cell (p50 / p99)."""
        ctrd_a, crius_a = self.values(steps, path + [a])
        ctrd_b, crius_b = self.values(steps, path + [b])
        self.rows.append((
            label,
            f"{fmt(ctrd_a, unit)} / {fmt(ctrd_b, unit)} {unit}",
            f"{fmt(crius_a, unit)} / {fmt(crius_b, unit)} {unit}",
            f"{ratio(ctrd_a, crius_a)} / {ratio(ctrd_b, crius_b)}",
        ))

    def count(self, label, steps, path, of=None):
        ctrd, crius = self.values(steps, path)
        total = "" if of is None else f" of {of}"
        self.rows.append((label, f"{fmt(ctrd, '')}{total}", f"{fmt(crius, '')}{total}", ""))

    def render(self):
        out = ["| metric | containerd | crius | crius / containerd |", "|---|---|---|---|"]
        out += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in self.rows]
        return "\n".join(out)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--header", default="")
    parser.add_argument("--versions", default="")
    args = parser.parse_args()
    data = load(args.dir)
    t = Table(data)

    life = "lifecycle"
    some = t.results("crius", life) or t.results("containerd", life)
    if some:
        runs = dig(some[0], ["lifecycle", "RunPodSandbox", "n"])
        rounds = max(len(t.results(r, life)) for r in RUNTIMES)
        t.rows.append((f"*lifecycle: {runs} pods one after another x {rounds} rounds, pid CONTAINER; "
                       "medians over rounds of p50 / p99, ms*", "", "", ""))
        t.pair("RunPodSandbox p50 / p99", life, ["lifecycle", "RunPodSandbox"], "p50_ms", "p99_ms", "ms")
        if any(dig(r, ["lifecycle_pid_pod"]) for r in some):
            t.pair("RunPodSandbox, pid POD, p50 / p99", life, ["lifecycle_pid_pod", "RunPodSandbox"],
                   "p50_ms", "p99_ms", "ms")
        for rpc in ("CreateContainer", "StartContainer"):
            t.pair(f"{rpc} p50 / p99", life, ["lifecycle", rpc], "p50_ms", "p99_ms", "ms")
        t.pair("Create+Start p50 / p99", life, ["lifecycle", "Create+Start"], "p50_ms", "p99_ms", "ms")
        # Five samples per pod, once its container runs, each after 20 ms of quiet
        # (e2e/src/bench/lifecycle.rs).
        t.pair("PodSandboxStatus, running pod, p50 / p99", life, ["lifecycle", "PodSandboxStatus"],
               "p50_ms", "p99_ms", "ms")
        for rpc in ("StopContainer", "RemoveContainer", "StopPodSandbox", "RemovePodSandbox"):
            t.pair(f"{rpc} p50 / p99", life, ["lifecycle", rpc], "p50_ms", "p99_ms", "ms")
        t.pair("teardown (4 RPCs) p50 / p99", life, ["lifecycle", "teardown"], "p50_ms", "p99_ms", "ms")

    heavy = "overhead,density"
    some = t.results("crius", heavy) or t.results("containerd", heavy)
    if some:
        pods = dig(some[0], ["overhead", "pods"])
        t.rows.append((f"*node overhead: {pods} pods x 1 container running*", "", "", ""))
        t.row("RSS of daemon + helpers + pause", heavy, ["overhead", "total", "rss_kib"], "MiB")
        t.row("PSS of daemon + helpers + pause", heavy, ["overhead", "total", "pss_kib"], "MiB")
        t.row("daemon RSS with the pods (idle before)", heavy, ["overhead", "daemon", "rss_kib"], "MiB")
        t.row("daemon PSS with the pods", heavy, ["overhead", "daemon", "pss_kib"], "MiB")
        t.count("per-container helpers (count)", heavy, ["overhead", "helpers", "count"])
        t.row("helpers RSS, all", heavy, ["overhead", "helpers", "rss_kib"], "MiB")
        t.row("helpers PSS, all", heavy, ["overhead", "helpers", "pss_kib"], "MiB")
        t.row("helper RSS each", heavy, ["overhead", "helpers", "rss_each_kib"], "KiB")
        t.row("helper PSS each", heavy, ["overhead", "helpers", "pss_each_kib"], "KiB")
        t.count("pause processes (count)", heavy, ["overhead", "pause", "count"])
        t.row("pause RSS, all", heavy, ["overhead", "pause", "rss_kib"], "KiB")
        t.row("pause PSS, all", heavy, ["overhead", "pause", "pss_kib"], "KiB")

        n = dig(some[0], ["density", "pods"])
        t.rows.append((f"*density: {n} pods x 1 container started at once*", "", "", ""))
        t.count("pods started", heavy, ["density", "started"], of=n)
        t.row("wall time to start all", heavy, ["density", "start_wall_s"], "s")
        t.row("daemon RSS peak while starting", heavy, ["density", "daemon_rss_kib", "peak"], "MiB")
        t.row(f"daemon RSS with {n} pods", heavy, ["density", "daemon_rss_kib", "all_started"], "MiB")
        t.row("wall time to tear all down", heavy, ["density", "teardown_wall_s"], "s")
        c = dig(some[0], ["clients", "clients"])
        l = dig(some[0], ["clients", "lifecycles"])
        t.row(f"{c} clients x {l} full lifecycles, wall", heavy, ["clients", "wall_s"], "s")
        t.count("clients that failed", heavy, ["clients", "failed_clients"])

    # The daemon row's label mentions "idle before": show it in the cells.
    for i, r in enumerate(t.rows):
        if r[0] == "daemon RSS with the pods (idle before)":
            idle = t.values(heavy, ["overhead", "daemon_before", "rss_kib"])
            t.rows[i] = (r[0], f"{r[1]} ({fmt(idle[0], 'MiB')})", f"{r[2]} ({fmt(idle[1], 'MiB')})", r[3])

    if args.header:
        print(f"{args.header}  ")
    if args.versions:
        print(f"{args.versions}")
    print()
    print(t.render())
    errors = []
    for runtime in RUNTIMES:
        for r in t.results(runtime, heavy):
            for key in ("density", "clients"):
                e = dig(r, [key, "first_error"])
                if e:
                    errors.append(f"{runtime} {key}: {e}")
    if errors:
        print()
        for e in errors:
            print(f"- {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
