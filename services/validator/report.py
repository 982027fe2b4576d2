"""Render a validation or evaluation report as text (stdout), JSON and one self-contained HTML page."""

from __future__ import annotations

import html
import json
import math
import os
import uuid
from pathlib import Path

CHECK_MARK = {True: "PASS", False: "FAIL"}


def fmt(value) -> str:
    """A number as the report prints it; None as n/a."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _check_line(check: dict) -> str:
    mark = CHECK_MARK[check["passed"]] if check["gate"] or check["passed"] else "note"
    line = f"  [{mark}] {check['name']}: {check['detail']}"
    if check["offending"]:
        more = check["n_offending"] - len(check["offending"])
        line += "\n         " + ", ".join(check["offending"]) + (f" ... and {more} more" if more > 0 else "")
    return line


def _section_checks(title: str, checks: list[dict]) -> list[str]:
    gating = [c for c in checks if c["gate"]]
    failed = [c for c in gating if not c["passed"]]
    verdict = "PASS" if not failed else "FAIL"
    return [f"{title}: {verdict} ({len(gating) - len(failed)}/{len(gating)} checks pass)",
            *(_check_line(c) for c in checks)]


def _section_behaviour(b: dict) -> list[str]:
    lines = ["BEHAVIOUR", f"  score entropy (10 bins, 0..1): {fmt(b['entropy'])}",
             f"  histogram: {b['histogram']}"]
    same = b.get("same_address")
    if same:
        lines.append("  same address: " + ", ".join(f"{k} {fmt(v)}" for k, v in same.items()))
    stab = b.get("stability")
    if stab:
        for key in ("by_alert_id", "by_address"):
            if key in stab:
                values = ", ".join(f"{k} {fmt(v)}" for k, v in stab[key].items())
                lines.append(f"  vs {stab['previous_date']} {key.replace('_', ' ')}: {values}")
    else:
        lines.append("  day-over-day: no previous published date")
    lines += [f"  note: {n}" for n in b.get("notes", [])]
    return lines


def _section_truth(gt: dict | None) -> list[str]:
    if not gt or "skipped" in gt:
        return ["GROUND TRUTH: skipped" + (f" ({gt['skipped']})" if gt else "")]
    lines = ["GROUND TRUTH (labels per SOT_CONTRACT section 3)"]
    for part in ("alerts", "ranking", "clusters"):
        lines.append(f"  {part}: " + ", ".join(f"{k} {fmt(v)}" for k, v in gt[part].items()))
    return lines


def _section_determinism(det: dict) -> list[str]:
    if "skipped" in det:
        return [f"DETERMINISM: skipped ({det['skipped']})"]
    return _section_checks("DETERMINISM", det["checks"])


def text_validate(report: dict) -> str:
    """The stdout form of a `validate` report."""
    head = [f"aml-miner validate {report['processing_date']}",
            f"  result: {report['source']}", f"  input:  {report['input']}",
            f"  model versions: {report.get('model_versions')}", ""]
    body = [*_section_checks("INTEGRITY GATE", report["integrity"]), "",
            *_section_behaviour(report["behaviour"]), "", *_section_truth(report["ground_truth"]), "",
            *_section_determinism(report["determinism"]), "",
            f"VERDICT: {report['verdict']['summary']} (exit code {report['verdict']['exit_code']})"]
    return "\n".join(head + body) + "\n"


def _table(rows: list[dict], columns: list[str]) -> list[str]:
    cells = [[fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = lambda values: "  " + "  ".join(v.ljust(w) for v, w in zip(values, widths))  # noqa: E731
    return [line(columns), line(["-" * w for w in widths]), *(line(r) for r in cells)]


def text_evaluate(report: dict) -> str:
    """The stdout form of an `evaluate` report."""
    lines = [f"aml-miner evaluate {' '.join(report['dates'])}", ""]
    for run in report["runs"]:
        lines.append(f"[{run['label']}] {run['models_dir']}  versions {run['model_versions']}")
        for date, one in run["per_date"].items():
            failed = one["integrity"]["failed"]
            lines.append(f"  {date}: gate {'PASS' if not failed else 'FAIL ' + ', '.join(failed)}, "
                         f"alert ROC AUC {fmt(one['alert_roc_auc'])}, entropy {fmt(one['entropy'])}")
    columns = ["metric", *(r["label"] for r in report["runs"])]
    if len(report["runs"]) == 2:
        columns += ["B - A", "better"]
    lines += [f"  note: {n}" for n in report.get("notes", [])]
    lines += ["", "POOLED OVER DATES", *_table(report["comparison"], columns), "",
              f"VERDICT: {report['verdict']['summary']} (exit code {report['verdict']['exit_code']})"]
    return "\n".join(lines) + "\n"


def render_text(report: dict) -> str:
    """Text form of either kind of report."""
    return text_validate(report) if report["kind"] == "validate" else text_evaluate(report)


STYLE = """body{font-family:sans-serif;margin:2em;max-width:75em}table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top;font-size:90%}
.PASS{color:#070}.FAIL{color:#b00}.note{color:#a60}img{margin:.5em;border:1px solid #eee}
pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:85%}"""


def _html_checks(checks: list[dict]) -> str:
    rows = []
    for c in checks:
        mark = CHECK_MARK[c["passed"]] if c["gate"] or c["passed"] else "note"
        offending = ", ".join(c["offending"]) + (" ..." if c["n_offending"] > len(c["offending"]) else "")
        rows.append(f"<tr><td>{html.escape(c['name'])}</td><td class='{mark}'>{mark}</td>"
                    f"<td>{html.escape(c['detail'])}</td><td>{html.escape(offending)}</td></tr>")
    return ("<table><tr><th>check</th><th>result</th><th>detail</th><th>offending (first "
            "20)</th></tr>" + "".join(rows) + "</table>")


def _html_rows(rows: list[dict], columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(r.get(c)))}</td>" for c in columns)
                   + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _html_pre(lines: list[str]) -> str:
    return "<pre>" + html.escape("\n".join(line.strip() for line in lines)) + "</pre>"


def _html_truth(gt: dict | None) -> str:
    if not gt or "skipped" in gt:
        return _html_pre(_section_truth(gt))
    rows = [{"part": part, **gt[part]} for part in ("alerts", "clusters")]
    keys = ["part", *[k for k in gt["alerts"]]]
    return _html_rows(rows, keys) + _html_rows([gt["ranking"]], list(gt["ranking"]))


def _html_body(report: dict) -> list[str]:
    if report["kind"] == "evaluate":
        columns = ["metric", *(r["label"] for r in report["runs"])]
        columns += ["B - A", "better"] if len(report["runs"]) == 2 else []
        runs = "".join(f"<li>[{html.escape(r['label'])}] {html.escape(r['models_dir'])}: "
                       f"{html.escape(str(r['model_versions']))}</li>" for r in report["runs"])
        return [f"<ul>{runs}</ul>", "<h2>Pooled over dates</h2>", _html_rows(report["comparison"], columns)]
    parts = ["<h2>Integrity gate</h2>", _html_checks(report["integrity"]),
             "<h2>Behaviour</h2>", _html_pre(_section_behaviour(report["behaviour"])[1:]),
             "<h2>Ground truth</h2>", _html_truth(report["ground_truth"])]
    det = report["determinism"]
    parts += ["<h2>Determinism</h2>",
              f"<p>skipped: {html.escape(det['skipped'])}</p>" if "skipped" in det
              else _html_checks(det["checks"])]
    return parts


def render_html(report: dict, figures: dict[str, str]) -> str:
    """One self-contained page: verdict, tables, embedded PNG figures and the full JSON."""
    title = (f"aml-miner {report['kind']} "
             f"{report.get('processing_date') or ' '.join(report.get('dates', []))}")
    images = "".join(f"<figure><img alt='{html.escape(name)}' src='data:image/png;base64,{png}'>"
                     f"<figcaption>{html.escape(name)}</figcaption></figure>"
                     for name, png in figures.items())
    verdict = report["verdict"]
    return "\n".join([
        "<!doctype html><html><head><meta charset='utf-8'>", f"<title>{html.escape(title)}</title>",
        f"<style>{STYLE}</style></head><body>", f"<h1>{html.escape(title)}</h1>",
        f"<p><b>{html.escape(verdict['summary'])}</b> (exit code {verdict['exit_code']})</p>",
        *_html_body(report), "<h2>Figures</h2>", f"<div style='display:flex;flex-wrap:wrap'>{images}</div>",
        "<h2>Full report</h2>", f"<details><summary>JSON</summary><pre>"
        f"{html.escape(to_json(report))}</pre></details>", "</body></html>",
    ])


def to_json(report: dict) -> str:
    """Stable JSON text (NaN written as null, keys in insertion order)."""
    return json.dumps(_clean(report), indent=2, allow_nan=False)


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".tmp-{path.name}-{uuid.uuid4().hex[:8]}")
    tmp.write_text(text)
    os.replace(tmp, path)


def write(report: dict, figures: dict[str, str], report_dir: Path, stem: str) -> tuple[Path, Path]:
    """Write `{stem}.json` and `{stem}.html` under report_dir (each replaced in one rename)."""
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    json_path, html_path = report_dir / f"{stem}.json", report_dir / f"{stem}.html"
    _write_atomic(json_path, to_json(report) + "\n")
    _write_atomic(html_path, render_html(report, figures))
    return json_path, html_path
