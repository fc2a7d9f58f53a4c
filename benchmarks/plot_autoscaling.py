"""The plot of benchmarks/bench_autoscaling.py: over time since the load step, one line per
autoscaler, three panels: Ready replicas (desired dotted), the in-flight signals per pod (the
Prometheus queries KEDA reads, at the gateway and at the pods, with their target), and p99 latency
per 5-second bucket.

    benchmarks/peers/.venv-plot/bin/python benchmarks/plot_autoscaling.py RESULTS.json OUT.png

Runs in the plot venv (matplotlib is not in the repo venv); reads only the results JSON.
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = ("#d95f02", "#1b9e77")  # (A) CPU HPA, (B) KEDA in-flight


def _series(samples: list[dict], key) -> tuple[list[float], list[float]]:
    """(t, value) of the samples where `key(sample)` has a value."""
    points = [(s["t"], key(s)) for s in samples]
    points = [(t, v) for t, v in points if v is not None]
    return [t for t, _ in points], [v for _, v in points]


def _per_pod(sample: dict, key: str = "in_flight") -> float | None:
    if sample.get(key) is None or not sample["pods"]:
        return None
    return sample[key] / sample["pods"]


def main(source: str, target: str) -> None:
    report = json.loads(open(source).read())
    config, load = report["config"], report["load"]
    fig, (replicas, signal, latency) = plt.subplots(3, 1, figsize=(9, 9.5), sharex=True)
    for side, phase, color in zip("AB", report["phases"], COLORS, strict=False):
        label = f"({side}) {phase['label']}"
        summary = phase["summary"]
        t, ready = _series(phase["samples"], lambda s: s["ready"])
        replicas.step(t, ready, where="post", color=color, label=f"{label}: Ready")
        t, desired = _series(phase["samples"], lambda s: s["spec"])
        replicas.step(t, desired, where="post", color=color, linestyle=":", alpha=0.8)
        for key, style in (("first_decision_s", ":"), ("ready_at_level_s", "--")):
            if summary[key] is not None:
                for axis in (replicas, signal, latency):
                    axis.axvline(summary[key], color=color, linestyle=style, linewidth=0.9)
        t, per_pod = _series(phase["samples"], _per_pod)
        signal.plot(t, per_pod, color=color, linestyle=":", label=f"{label}: at the pods")
        t, per_pod = _series(phase["samples"], lambda s: _per_pod(s, "in_flight_gateway"))
        signal.plot(t, per_pod, color=color, label=f"{label}: at the gateway")
        buckets = [b for b in phase["buckets"] if b["p99_ms"] is not None]
        centers = [b["t"] + config["bucket_s"] / 2 for b in buckets]
        latency.plot(centers, [b["p99_ms"] for b in buckets], color=color, marker=".", label=label)
    replicas.axhline(
        load["needed_replicas"], color="grey", linewidth=0.8, linestyle="-.", label="needed"
    )
    replicas.set_ylabel("replicas")
    replicas.set_ylim(0, config["max_replicas"] + 0.5)
    replicas.set_title(
        "Ready replicas (desired dotted; vertical: first scale-up dotted, Ready at the new "
        "level dashed)",
        fontsize=9,
    )
    replicas.legend(fontsize=8, loc="lower right")
    signal.axhline(
        config["in_flight_target"], color="grey", linewidth=0.8, linestyle="-.", label="target"
    )
    signal.set_ylabel("in flight per pod")
    signal.set_yscale("symlog", linthresh=1)
    signal.set_title(
        f"In-flight signals per pod, as KEDA reads them: at the gateway ("
        f"{config.get('gateway_rate_window')} window, solid) and at the pods "
        f"({config['rate_window']} window, dotted)",
        fontsize=9,
    )
    signal.legend(fontsize=8, loc="upper right")
    latency.set_yscale("log")
    latency.set_ylabel("p99 latency (ms)")
    latency.set_title(f"p99 per {config['bucket_s']:g}-second bucket (by send time)", fontsize=9)
    latency.set_xlabel("seconds since the step")
    latency.legend(fontsize=8, loc="upper right")
    for axis in (replicas, signal, latency):
        axis.axvline(0, color="black", linewidth=0.8)
        axis.grid(alpha=0.3)
    fig.suptitle(
        f"ml-model-1: {load['base_rate']:.0f} → {load['step_rate']:.0f} req/s at t = 0 "
        f"({report['machine']['cpus']} CPUs, shared; 1-min load "
        f"{report['machine']['loadavg_start'][0]:.1f} at the start)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(target, dpi=110)


if __name__ == "__main__":
    main(*sys.argv[1:3])
