"""The plot of benchmarks/bench_inflight.py: the pods' in-flight reading against the server's busy
share, inline and micro-batched, one panel per request size.

    benchmarks/peers/.venv-plot/bin/python benchmarks/plot_inflight.py RESULTS.json OUT.png

Runs in the plot venv (matplotlib is not in the repo venv); reads only the results JSON.
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {"inline": "#1b9e77", "batched": "#d95f02"}


def main(source: str, target: str) -> None:
    report = json.loads(open(source).read())
    levels = report["levels"]
    sizes = list(dict.fromkeys(r["rows"] for r in levels))
    fig, axes = plt.subplots(1, len(sizes), figsize=(6 * len(sizes), 4.8), squeeze=False)
    for ax, rows in zip(axes[0], sizes, strict=True):
        for mode, color in COLORS.items():
            points = sorted(
                (r["busy"], r["in_flight"])
                for r in levels
                if r["rows"] == rows and r["mode"] == mode
            )
            busy = [b for b, _ in points]
            reading = [f for _, f in points]
            ax.plot(busy, reading, "o-", color=color, label=mode)
        share = [i / 100 for i in range(1, 101)]
        ax.plot(share, share, "--", color="grey", linewidth=1, label="reading = busy share")
        ax.set_yscale("log")
        ax.set_xlim(0, 1.05)
        ax.set_xlabel("server busy share (CPU seconds per second, one core)")
        ax.set_ylabel("in-flight reading at the pod (log)")
        ax.set_title(f"ml_model_1, {rows} row{'s' if rows > 1 else ''} per request")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"In-flight signal vs load ({report['started']})", fontsize=10)
    fig.tight_layout()
    fig.savefig(target, dpi=110)


if __name__ == "__main__":
    main(*sys.argv[1:])
