//! Progress bars on a terminal, plain log lines otherwise.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use dealhouse_ingest::sync::{SyncProgress, TableReport};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// One bar per (source, table) while a sync runs.
pub struct SyncBars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

fn target() -> ProgressDrawTarget {
    if std::io::stderr().is_terminal() { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() }
}

impl SyncBars {
    pub fn new() -> Self {
        Self { multi: MultiProgress::with_draw_target(target()), bars: Mutex::new(HashMap::new()) }
    }

    pub fn clear(&self) {
        let _ = self.multi.clear();
    }
}

impl SyncProgress for SyncBars {
    fn start(&self, source: &str, table: &str, estimated_rows: Option<u64>) {
        let bar = self.multi.add(match estimated_rows {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::no_length(),
        });
        let style = ProgressStyle::with_template("{prefix:<28} {bar:30} {pos:>9}/{len:<9} {per_sec:>12} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_prefix(format!("{source}.{table}"));
        if let Ok(mut bars) = self.bars.lock() {
            bars.insert(format!("{source}.{table}"), bar);
        }
    }

    fn advance(&self, source: &str, table: &str, rows: u64) {
        if let Ok(bars) = self.bars.lock()
            && let Some(b) = bars.get(&format!("{source}.{table}"))
        {
            b.inc(rows);
        }
    }

    fn finish(&self, source: &str, r: &TableReport) {
        if let Ok(mut bars) = self.bars.lock()
            && let Some(b) = bars.remove(&format!("{source}.{}", r.table))
        {
            b.finish_and_clear();
        }
        tracing::info!(source, table = %r.table, read = r.read, inserted = r.inserted, updated = r.updated, quarantined = r.quarantined, skipped = r.skipped, "synced");
    }
}

/// A counter bar (hidden when stderr is not a terminal).
pub fn counter(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), target());
    if let Ok(style) = ProgressStyle::with_template("{prefix} {bar:30} {pos}/{len} {elapsed}") {
        bar.set_style(style);
    }
    bar.set_prefix(what.to_string());
    bar
}

/// Prints a line above the bar, or to stderr when the bar is hidden (not a terminal: indicatif
/// drops `println` on a hidden bar, and these lines are the command's report).
pub fn line(bar: &ProgressBar, text: impl AsRef<str>) {
    if bar.is_hidden() {
        eprintln!("{}", text.as_ref());
    } else {
        bar.println(text);
    }
}
