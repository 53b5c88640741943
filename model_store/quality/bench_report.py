"""The benchmark report as markdown (the JSON holds every figure; this is the readable part)."""

from __future__ import annotations

from typing import Any


def _row(*cells: object) -> str:
    return "| " + " | ".join(f"{c:.3f}" if isinstance(c, float) else str(c) for c in cells) + " |"


def _pair(a: float, b: float) -> str:
    return f"{a:.3f} / {b:.3f}"


def _headline(r: dict[str, Any]) -> list[str]:
    bg, pos, vis, data = r["background"], r["position"], r["visual"], r["test_data"]
    models = ", ".join(f"{k} `{v}`" for k, v in r["models"].items())
    lines = [
        "# Quality models: benchmark",
        "",
        f"Models: {models}. Test data: {data['n']} photos of {data['items']} on {data['backgrounds']}.",
        "",
        _row("figure", "value", "target"),
        _row("---", "---", "---"),
        _row("background accuracy", bg["accuracy"], ">= 0.97"),
        _row("position box mean IoU", pos["mean_iou"], ">= 0.85"),
        _row("position subject / non-subject accuracy", pos["subject_accuracy"], ">= 0.95"),
        _row(
            "position score Spearman vs true coverage-and-centring",
            pos["score_spearman_coverage_centring"],
            "",
        ),
        _row(
            f"noise sub-score Spearman vs true distortion (all {data['n']})",
            vis["noise_spearman_distortion"],
            ">= 0.9",
        ),
    ]
    if "brisque_subset" in vis:
        b = vis["brisque_subset"]
        both = _pair(b["noise_subscore_spearman"], b["brisque_spearman"])
        degraded = _pair(b["noise_subscore_spearman_degraded_only"], b["brisque_spearman_degraded_only"])
        lines.append(_row(f"same, first {b['n']} images: noise sub-score / BRISQUE", both, "beat BRISQUE"))
        lines.append(_row("same, degraded images only: noise sub-score / BRISQUE", degraded, ""))
    factors = (
        f"{vis['aesthetic_spearman_composition']:.3f} / {vis['aesthetic_spearman_contrast']:.3f} / "
        f"{vis['aesthetic_spearman_one_minus_clutter']:.3f}"
    )
    lines.append(_row("aesthetic sub-score Spearman vs true aesthetic", vis["aesthetic_spearman_aesthetic"], ""))
    lines.append(_row("aesthetic vs composition / contrast / (1 - clutter)", factors, ""))
    return lines


def markdown(r: dict[str, Any]) -> str:
    bg, abl, sp = r["background"], r["twin_ablation"], r["speed"]
    lines = _headline(r)
    lines += ["", "## Background confusion (rows true, columns predicted)", ""]
    lines += [_row("", *bg["classes"]), _row(*["---"] * (len(bg["classes"]) + 1))]
    for name, row in zip(bg["classes"], bg["confusion_true_by_predicted"], strict=True):
        lines.append(_row(name, *row))
    lines += [
        "",
        "## Twin ablation (visual model)",
        "",
        _row("", "with twin", "without twin"),
        _row("---", "---", "---"),
    ]
    for k in (k for k in abl["twin"] if k != "model"):
        lines.append(_row(k, abl["twin"][k], abl.get("no_twin", {}).get(k, "n/a")))
    lines += [
        "",
        "## Cost",
        "",
        f"Batch {sp['batch']} at {sp['input_size']} px, {sp['threads']} threads: the three quality models "
        f"together {sp['quality_three_models_images_per_s']} images/s, the Lite0 embedder alone "
        f"{sp['lite0_embedder_images_per_s']} images/s (quality takes "
        f"{sp['quality_cost_relative_to_embedder']:.2f}x the embedder's time).",
        "",
        "## Real photographs (see photo_grid.png)",
        "",
        _row("photo", "background (p) score", "position score", "aesthetic", "noise", "total"),
        _row(*["---"] * 6),
    ]
    for name, q in r["real_photos"].items():
        b, p, v = q["background"], q["position"], q["visual"]
        bg_cell = f"{b['label']} ({b['probability']:.2f}) {b['score']:.2f}"
        lines.append(_row(name, bg_cell, f"{p['category']} {p['score']:.2f}", v["aesthetic"], v["noise"], q["total"]))
    return "\n".join(lines) + "\n"
