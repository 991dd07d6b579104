//! Progress on a terminal: a bar (or spinner) on stderr, hidden when piped or with --json.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

use crate::Context;

fn shown(ctx: &Context) -> bool {
    std::io::stderr().is_terminal() && !ctx.json
}

/// A bar of `len` items (0: set later).
pub fn bar(ctx: &Context, len: u64) -> ProgressBar {
    if !shown(ctx) {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}").expect("valid template"));
    bar
}

/// A spinner with a message, for work whose length is not known.
pub fn spinner(ctx: &Context) -> ProgressBar {
    if shown(ctx) { ProgressBar::new_spinner() } else { ProgressBar::hidden() }
}
