"""The plot of benchmarks/bench_serving_peers.py: req/s, p99 and CPU per request, per scenario and
server.

    benchmarks/peers/.venv-plot/bin/python benchmarks/plot_serving_peers.py RESULTS.json OUT.png

Runs in the plot venv (matplotlib is not in the repo venv); reads only the results JSON.
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {
    "ours": "#1b9e77",
    "ours-batched": "#0b5e47",
    "kserve-onnx": "#7570b3",
    "mlserver-onnx": "#d95f02",
    "mlserver-onnx-batched": "#fdae6b",
    "pytriton-onnx": "#e7298a",
    "mlserver-sklearn": "#a6761d",
    "fastapi-tf-function": "#66a61e",
    "fastapi-tf-predict": "#666666",
}


def main(source: str, target: str) -> None:
    report = json.loads(open(source).read())
    scenarios = report["scenarios"]
    servers = [s for s in COLORS if any(s in r["servers"] for r in scenarios.values())]
    fig, (rps_ax, p99_ax, cpu_ax) = plt.subplots(3, 1, figsize=(13, 11), sharex=True)
    width = 0.8 / len(servers)
    for i, server in enumerate(servers):
        xs, rps, p99, cpu = [], [], [], []
        for j, r in enumerate(scenarios.values()):
            m = r["servers"].get(server)
            if m:
                xs.append(j - 0.4 + width * (i + 0.5))
                rps.append(m["rps"])
                p99.append(m["p99_ms"] or 0)
                cpu.append(m["cpu_us_per_req"] or 0)
        rps_ax.bar(xs, rps, width, label=server, color=COLORS[server])
        p99_ax.bar(xs, p99, width, color=COLORS[server])
        cpu_ax.bar(xs, cpu, width, color=COLORS[server])
    axes = (
        (rps_ax, "req/s (log)"),
        (p99_ax, "p99 latency, ms (log)"),
        (cpu_ax, "server CPU µs per request (log)"),
    )
    for ax, label in axes:
        ax.set_yscale("log")
        ax.set_ylabel(label)
        ax.grid(axis="y", which="both", alpha=0.3)
    names = list(scenarios)
    cpu_ax.set_xticks(range(len(names)), names, rotation=20, ha="right")
    rps_ax.legend(ncol=4, fontsize=8, loc="upper right")
    load = [r["loadavg_before"][0] for r in scenarios.values()]
    rps_ax.set_title(
        f"Model server vs peers, one core each, same ONNX file ({report['started']}; "
        f"1-min load {min(load):.1f}-{max(load):.1f})",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(target, dpi=110)


if __name__ == "__main__":
    main(*sys.argv[1:3])
