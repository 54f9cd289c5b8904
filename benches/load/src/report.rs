//! The report: a markdown table per scenario, each figure next to its ratio to the baseline, and
//! whether the scenario's target was met.

use std::fmt::Write as _;

use crate::measure::Run;
use crate::server::Impl;

pub(crate) fn find(runs: &[(Impl, Run)], kind: Impl) -> Option<&Run> {
    runs.iter().find(|(k, _)| *k == kind).map(|(_, run)| run)
}

pub(crate) fn ratio(runs: &[(Impl, Run)], metric: impl Fn(&Run) -> f64) -> Option<f64> {
    let baseline = metric(find(runs, Impl::Baseline)?);
    let statelesse = metric(find(runs, Impl::Statelesse)?);
    (baseline > 0.0).then(|| statelesse / baseline)
}

/// Server CPU per delivery, in all and per process, and how many events each write carried.
pub(crate) fn cpu_rows(table: &mut Table, runs: &[(Impl, Run)], per_cpu: impl Fn(&Run) -> f64) {
    let per_million = |cpu: f64, run: &Run| Some(cpu / run.delivered.max(1) as f64 * 1e6);
    table.row(
        "deliveries per server CPU-second",
        Better::Higher,
        runs,
        |run| Some(per_cpu(run)),
    );
    table.row(
        "server CPU s per million deliveries",
        Better::Lower,
        runs,
        |run| per_million(run.cpu.server(), run),
    );
    table.row("… instance A (SSE)", Better::Lower, runs, |run| {
        per_million(run.cpu.a, run)
    });
    table.row("… instance B (HTTP publish)", Better::Lower, runs, |run| {
        per_million(run.cpu.b, run)
    });
    table.row("… Redis", Better::Lower, runs, |run| {
        per_million(run.cpu.redis, run)
    });
    table.row(
        "events per write system call (instance A)",
        Better::Higher,
        runs,
        |run| Some(run.delivered as f64 / run.cpu.writes_a.max(1.0)),
    );
    table.row(
        "load generator CPU busy (%)",
        Better::Neither,
        runs,
        |run| Some(run.cpu.load / run.seconds * 100.0),
    );
}

pub(crate) fn latency_rows(table: &mut Table, runs: &[(Impl, Run)]) {
    for (label, q) in [
        ("latency p50 (µs)", 0.5),
        ("latency p90 (µs)", 0.9),
        ("latency p99 (µs)", 0.99),
        ("latency p99.9 (µs)", 0.999),
    ] {
        table.row(label, Better::Lower, runs, |run| Some(run.latency_us(q)));
    }
    table.row(
        "HTTP publish round trip p50 (µs)",
        Better::Lower,
        runs,
        |run| Some(run.publish.value_at_quantile(0.5) as f64 / 1e3),
    );
}

pub(crate) fn delivery_rows(table: &mut Table, runs: &[(Impl, Run)]) {
    table.row("deliveries/s", Better::Higher, runs, |run| {
        Some(run.per_second())
    });
    table.row("published", Better::Neither, runs, |run| {
        Some(run.published as f64)
    });
    table.row("delivered", Better::Neither, runs, |run| {
        Some(run.delivered as f64)
    });
    table.row("lost", Better::Lower, runs, |run| Some(run.lost as f64));
    table.row("duplicated", Better::Lower, runs, |run| {
        Some(run.duplicated as f64)
    });
    table.row("gap events", Better::Neither, runs, |run| {
        Some(run.gaps as f64)
    });
    table.row("errors", Better::Lower, runs, |run| Some(run.errors as f64));
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Better {
    Lower,
    Higher,
    Neither,
}

/// A markdown table of one scenario.
#[derive(Debug)]
pub(crate) struct Table {
    pub(crate) title: String,
    pub(crate) target: String,
    pub(crate) columns: [&'static str; 4],
    pub(crate) rows: Vec<[String; 4]>,
    pub(crate) verdict: Option<bool>,
    pub(crate) note: String,
}

impl Table {
    pub(crate) fn new(title: &str, target: &str) -> Self {
        Self {
            title: title.to_owned(),
            target: target.to_owned(),
            columns: ["", "baseline", "statelesse", "statelesse / baseline"],
            rows: Vec::new(),
            verdict: None,
            note: String::new(),
        }
    }

    pub(crate) fn row(
        &mut self,
        label: &str,
        better: Better,
        runs: &[(Impl, Run)],
        metric: impl Fn(&Run) -> Option<f64>,
    ) {
        let value = |kind| find(runs, kind).and_then(&metric);
        let (baseline, statelesse) = (value(Impl::Baseline), value(Impl::Statelesse));
        let show = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), format_number);
        let ratio = match (baseline, statelesse, better) {
            (_, _, Better::Neither) => String::new(),
            (Some(b), Some(s), _) if b > 0.0 => format!("{:.2}x", s / b),
            _ => String::new(),
        };
        self.rows
            .push([label.to_owned(), show(baseline), show(statelesse), ratio]);
    }

    pub(crate) fn raw_row(&mut self, cells: &[String; 4]) {
        self.rows.push(cells.clone());
    }

    pub(crate) fn render(&self) -> String {
        let mut out = format!("### {}\n\n", self.title);
        let _ = writeln!(out, "| {} |", self.columns.join(" | "));
        let _ = writeln!(out, "|---|---:|---:|---:|");
        for row in &self.rows {
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
        let verdict = match self.verdict {
            Some(true) => "met",
            Some(false) => "NOT met",
            None => "not measured",
        };
        let _ = writeln!(out, "\nTarget {}: **{verdict}**", self.target);
        if !self.note.is_empty() {
            let _ = writeln!(out, "\n{}", self.note);
        }
        out
    }
}

pub(crate) fn format_number(value: f64) -> String {
    if value == 0.0 || value.abs() >= 100.0 {
        format!("{value:.0}")
    } else if value.abs() >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}
