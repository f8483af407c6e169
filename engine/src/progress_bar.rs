//! The progress bar `compute` (and `to_npy`, `to_zarr`, a local `persist`) shows on a terminal, like
//! `dask.diagnostics.ProgressBar`: tasks done out of the total, the bytes produced, the elapsed time
//! and the busiest layer, drawn with `indicatif` on standard error. It reads the run's [`Progress`] (the same record job handles read), so it works on
//! either executor: on a cluster it moves with the scheduler's progress reports.
//!
//! It appears only when standard error is a terminal and the work has lasted more than
//! [`SHOW_AFTER`] (short computations print nothing), and it can be turned off for the process with
//! [`set_progress_bar`]`(false)` or the environment variable `TESSERA_PROGRESS=0`.
//! `TESSERA_PROGRESS=always` shows it even when standard error is not a terminal: there (a log
//! file, a pipe) it is one plain line every [`LOG_EVERY`] instead of a redrawn bar.

use std::io::IsTerminal;
use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::exec::{Progress, ProgressSnapshot};
use crate::jobs::JobHandle;

/// The environment variable that turns the bar off (`0`, `false`, `off`, `no`) or forces it on
/// (`always`) for the process.
pub const PROGRESS_ENV: &str = "TESSERA_PROGRESS";

/// How long a computation runs before its bar appears.
pub const SHOW_AFTER: Duration = Duration::from_secs(1);

/// How often a shown bar is redrawn.
const REFRESH: Duration = Duration::from_millis(100);

/// How often the progress line is written when standard error is not a terminal.
pub const LOG_EVERY: Duration = Duration::from_secs(1);

const FOLLOW_ENV: u8 = 0;
const ON: u8 = 1;
const OFF: u8 = 2;

/// The process-wide choice of [`set_progress_bar`]; `FOLLOW_ENV` until it is called.
static CHOICE: AtomicU8 = AtomicU8::new(FOLLOW_ENV);

/// Turns the progress bar of `compute` on (still only on a terminal, after [`SHOW_AFTER`]) or off
/// for the whole process; overrides `TESSERA_PROGRESS`.
///
/// ```
/// tessera::set_progress_bar(false);
/// let x = tessera::ones::<f64>(&[10], [5])?;
/// assert_eq!(x.sum()?.compute_scalar::<f64>()?, 10.0);
/// # Ok::<(), tessera::Error>(())
/// ```
pub fn set_progress_bar(on: bool) {
    CHOICE.store(if on { ON } else { OFF }, Ordering::Relaxed);
}

/// Whether a computation started now would show a bar once it passes [`SHOW_AFTER`].
pub fn progress_bar_enabled() -> bool {
    let env = std::env::var(PROGRESS_ENV).unwrap_or_default();
    let env = env.trim().to_ascii_lowercase();
    if env == "always" && CHOICE.load(Ordering::Relaxed) != OFF {
        return true;
    }
    let off_by_env = matches!(env.as_str(), "0" | "false" | "off" | "no");
    let wanted = match CHOICE.load(Ordering::Relaxed) {
        ON => true,
        OFF => false,
        _ => !off_by_env,
    };
    wanted && std::io::stderr().is_terminal()
}

/// Runs `work`, handing it a [`Progress`] to report into and showing a bar for it when enabled;
/// without a bar `work` gets `None` (and pays nothing for progress).
pub(crate) fn with_bar<R>(work: impl FnOnce(Option<&Progress>) -> R) -> R {
    if !progress_bar_enabled() {
        return work(None);
    }
    let progress = Progress::new();
    let (stop, stopped) = mpsc::channel::<()>();
    let shown = progress.clone();
    let drawer = std::thread::Builder::new()
        .name("tessera-progress".into())
        .spawn(move || draw(&shown, &stopped, SHOW_AFTER));
    let result = work(Some(&progress));
    drop(stop);
    if let Ok(d) = drawer {
        let _ = d.join();
    }
    result
}

/// Shows `job`'s progress bar on standard error until it ends (whether or not standard error is a
/// terminal, and at once), then returns how it ended. For scripts that submit a job and want to watch
/// it: `show_progress(&job); let r = job.result::<f64>()?;`.
pub fn show_progress(job: &JobHandle) -> crate::jobs::JobStatus {
    let mut bar = new_bar();
    loop {
        let status = job.wait_timeout(REFRESH);
        let p = job.progress();
        if status.is_done() {
            bar.end(&p, status == crate::jobs::JobStatus::Finished);
            return status;
        }
        bar.update(&p);
    }
}

/// The drawing thread: waits `delay` (returning early if the work ends first), then redraws every
/// [`REFRESH`] until `stopped` disconnects.
fn draw(progress: &Progress, stopped: &mpsc::Receiver<()>, delay: Duration) {
    if !matches!(
        stopped.recv_timeout(delay),
        Err(mpsc::RecvTimeoutError::Timeout)
    ) {
        return;
    }
    let mut bar = new_bar();
    loop {
        bar.update(&progress.snapshot());
        match stopped.recv_timeout(REFRESH) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            _ => break,
        }
    }
    let last = progress.snapshot();
    let finished = last.total() > 0 && last.done() == last.total();
    bar.end(&last, finished);
}

/// What a bar draws on: `indicatif` on a terminal, plain lines (at most one per [`LOG_EVERY`], and
/// the last one always) anywhere else, where a redrawn bar would fill a log with control codes.
enum Bar {
    Terminal(ProgressBar),
    Lines {
        start: Instant,
        last: Option<Instant>,
    },
}

fn new_bar() -> Bar {
    if !std::io::stderr().is_terminal() {
        return Bar::Lines {
            start: Instant::now(),
            last: None,
        };
    }
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "[{elapsed_precise}] {bar:32.cyan/blue} {pos}/{len} tasks ({percent}%) {msg}",
        )
        .expect("a valid template")
        .progress_chars("█▉▊▋▌▍▎▏ "),
    );
    Bar::Terminal(bar)
}

impl Bar {
    /// Moves the bar to the snapshot: length and position in tasks, the message with bytes produced
    /// and the layer with the most work left.
    fn update(&mut self, p: &ProgressSnapshot) {
        match self {
            Bar::Terminal(bar) => {
                bar.set_length(p.total());
                bar.set_position(p.done());
                bar.set_message(summary(p));
            }
            Bar::Lines { start, last } => {
                if last.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
                    *last = Some(Instant::now());
                    write_line(*start, p);
                }
            }
        }
    }

    /// Ends the bar: kept as it is when the work finished, cleared of its spinner state otherwise.
    fn end(self, p: &ProgressSnapshot, finished: bool) {
        match self {
            Bar::Terminal(bar) => {
                bar.set_length(p.total());
                bar.set_position(p.done());
                bar.set_message(summary(p));
                if finished {
                    bar.finish();
                } else {
                    bar.abandon();
                }
            }
            Bar::Lines { start, .. } => write_line(start, p),
        }
    }
}

/// One progress line, as the terminal bar reads without the bar: `[00:00:03] 12/30 tasks (40%) …`.
fn write_line(start: Instant, p: &ProgressSnapshot) {
    let secs = start.elapsed().as_secs();
    let percent = (p.done() * 100).checked_div(p.total()).unwrap_or(0);
    let line = format!(
        "[{:02}:{:02}:{:02}] {}/{} tasks ({percent}%) {}\n",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        p.done(),
        p.total(),
        summary(p)
    );
    // A closed stderr is no reason to fail the computation.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// The counts of one plain progress line (`[00:00:03] 12/30 tasks (40%) …` gives `(12, 30, 40)`),
/// `None` for any other line: for programs (and tests) that follow a log the bar writes. It sits
/// beside the writer so that the two read the same format.
pub fn parse_line(line: &str) -> Option<(u64, u64, u64)> {
    let rest = line.strip_prefix('[')?.split_once("] ")?.1;
    let (counts, rest) = rest.split_once(" tasks (")?;
    let (done, total) = counts.split_once('/')?;
    let percent = rest.split_once("%)")?.0;
    Some((
        done.parse().ok()?,
        total.parse().ok()?,
        percent.parse().ok()?,
    ))
}

/// "12.5 MB · mean 3/16": bytes produced so far, and the unfinished layer with the most tasks left.
fn summary(p: &ProgressSnapshot) -> String {
    let bytes = indicatif::HumanBytes(p.bytes());
    match p
        .layers
        .iter()
        .filter(|l| l.done < l.total)
        .max_by_key(|l| l.total - l.done)
    {
        Some(l) => format!("{bytes} · {} {}/{}", l.name, l.done, l.total),
        None => format!("{bytes}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::LayerProgress;

    #[test]
    fn plain_lines_parse_and_other_lines_do_not() {
        let line = "[00:01:03] 12/30 tasks (40%) 1.00 MiB · sum 2/8";
        assert_eq!(parse_line(line), Some((12, 30, 40)));
        for other in [
            "",
            "warning: slow",
            "[00:00:01] x/30 tasks (1%)",
            "[00:00:01] 1/2 tasks",
        ] {
            assert_eq!(parse_line(other), None, "{other}");
        }
    }

    #[test]
    fn the_message_names_the_layer_with_most_left() {
        let layer = |name: &str, done, total| LayerProgress {
            layer: format!("{name}-00"),
            name: name.into(),
            done,
            total,
            bytes: 1024 * done,
        };
        let p = ProgressSnapshot {
            layers: vec![
                layer("random", 16, 16),
                layer("sum", 2, 8),
                layer("mean", 0, 1),
            ],
            finished: false,
        };
        assert_eq!(summary(&p), "18.00 KiB · sum 2/8");
        let done = ProgressSnapshot {
            layers: vec![layer("random", 4, 4)],
            finished: true,
        };
        assert_eq!(summary(&done), "4.00 KiB");
    }
}
