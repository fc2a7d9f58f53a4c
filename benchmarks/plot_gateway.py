"""The plot of benchmarks/bench_gateway.py: p50 and p99 per path (bars), and req/s, per load level.

    benchmarks/peers/.venv-plot/bin/python benchmarks/plot_gateway.py RESULTS.json OUT.png

Runs in the plot venv (matplotlib is not in the repo venv); reads only the results JSON.
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {"p50_ms": "#1b9e77", "p99_ms": "#d95f02", "rps": "#7570b3"}


def main(source: str, target: str) -> None:
    report = json.loads(open(source).read())
    rows = report["summary"]
    levels = list(dict.fromkeys(r["connections"] for r in rows))
    fig, axes = plt.subplots(2, len(levels), figsize=(5.5 * len(levels), 7), squeeze=False)
    for col, connections in enumerate(levels):
        level = [r for r in rows if r["connections"] == connections]
        names = [r["path"] for r in level]
        x = range(len(level))
        latency = axes[0][col]
        width = 0.38
        for i, key in enumerate(("p50_ms", "p99_ms")):
            values = [r[key] for r in level]
            bars = latency.bar(
                [v + (i - 0.5) * width for v in x],
                values,
                width,
                label=key.removesuffix("_ms"),
                color=COLORS[key],
            )
            latency.bar_label(bars, fmt="%.1f", fontsize=7)
        latency.set_xticks(list(x), names, rotation=20, fontsize=8)
        latency.set_ylabel("latency (ms)")
        latency.set_title(f"{connections} connection{'s' if connections > 1 else ''}: latency")
        latency.legend(fontsize=8)
        rps = axes[1][col]
        bars = rps.bar(list(x), [r["rps"] for r in level], 0.6, color=COLORS["rps"])
        rps.bar_label(bars, fmt="%.0f", fontsize=7)
        rps.set_xticks(list(x), names, rotation=20, fontsize=8)
        rps.set_ylabel("req/s (median)")
        rps.set_title(f"{connections} connection{'s' if connections > 1 else ''}: throughput")
    fig.suptitle(
        f"ml-model-1 infer by path ({report['machine']['cpus']} CPUs, shared; "
        f"medians of {report['config']['rounds']} rounds of {report['config']['seconds']:g} s)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(target, dpi=110)


if __name__ == "__main__":
    main(*sys.argv[1:3])
