//! `/metrics`: a [`Snapshot`] in Prometheus' text exposition format (version 0.0.4) — one `# HELP`
//! and `# TYPE` per family, then its samples. Counters end in `_total`; task run times are a
//! histogram with cumulative `_bucket{le=..}` lines, `_sum` and `_count`.

use std::fmt::Write;

use super::snapshot::{Snapshot, TASK_STATES};

/// The content type Prometheus expects for this format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Escapes a label value (backslash, double quote and newline, as the format requires).
fn label(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A bucket bound as Prometheus writes it (`+Inf` for the last).
fn bound(b: f64) -> String {
    if b.is_infinite() {
        "+Inf".into()
    } else {
        format!("{b}")
    }
}

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", label(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    fn single(&mut self, name: &str, kind: &str, help: &str, value: u64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

/// The text of `/metrics`.
pub fn render(s: &Snapshot) -> String {
    let mut o = Out(String::new());
    o.single(
        "tessera_workers",
        "gauge",
        "Workers registered with the scheduler.",
        s.workers.len() as u64,
    );
    o.single(
        "tessera_workers_lost_total",
        "counter",
        "Workers lost (session closed or heartbeat timeout) since start.",
        s.workers_lost,
    );
    o.family(
        "tessera_worker_threads",
        "gauge",
        "Task threads of each worker.",
    );
    for w in &s.workers {
        o.sample(
            "tessera_worker_threads",
            &[("worker", &w.address)],
            w.threads,
        );
    }
    o.family(
        "tessera_worker_tasks_running",
        "gauge",
        "Tasks assigned to each worker and not yet reported.",
    );
    for w in &s.workers {
        o.sample(
            "tessera_worker_tasks_running",
            &[("worker", &w.address)],
            w.running,
        );
    }
    o.family(
        "tessera_worker_memory_bytes",
        "gauge",
        "Each worker's memory: chunks held in memory (as it reports), reserved for running tasks, spilled to disk, and its limit.",
    );
    for w in &s.workers {
        for (kind, v) in [
            ("held", w.reported_bytes),
            ("running", w.bytes_running),
            ("spilled", w.bytes_spilled),
            ("limit", w.memory_limit),
        ] {
            o.sample(
                "tessera_worker_memory_bytes",
                &[("worker", &w.address), ("kind", kind)],
                v,
            );
        }
    }
    o.family(
        "tessera_worker_cpu_cores",
        "gauge",
        "Cores each worker process used between its last two heartbeats.",
    );
    for w in &s.workers {
        if let Some(cpu) = w.cpu {
            o.sample("tessera_worker_cpu_cores", &[("worker", &w.address)], cpu);
        }
    }
    o.single(
        "tessera_bytes_held",
        "gauge",
        "Bytes of chunks held by all workers, by the scheduler's books.",
        s.workers.iter().map(|w| w.bytes_held).sum(),
    );
    o.single(
        "tessera_jobs",
        "gauge",
        "Jobs in the scheduler (running, or complete and not yet closed by their client).",
        s.jobs_in_flight,
    );
    o.family(
        "tessera_jobs_total",
        "counter",
        "Jobs since start, by how they ended (submitted counts every job).",
    );
    for (state, n) in [
        ("submitted", s.counters.jobs_submitted),
        ("completed", s.counters.jobs_completed),
        ("failed", s.counters.jobs_failed),
        ("cancelled", s.counters.jobs_cancelled),
    ] {
        o.sample("tessera_jobs_total", &[("state", state)], n);
    }
    o.family(
        "tessera_tasks",
        "gauge",
        "Tasks of the jobs in the scheduler, by state.",
    );
    for (state, n) in TASK_STATES.iter().zip(s.task_states) {
        o.sample("tessera_tasks", &[("state", state)], n);
    }
    o.single(
        "tessera_tasks_completed_total",
        "counter",
        "Tasks workers ran and reported done since start.",
        s.counters.tasks_done,
    );
    o.single(
        "tessera_tasks_failed_total",
        "counter",
        "Tasks workers reported failed since start.",
        s.counters.tasks_failed,
    );
    o.single(
        "tessera_replicas_total",
        "counter",
        "Chunks copied off retiring workers since start.",
        s.counters.replicas,
    );
    o.single(
        "tessera_transfer_bytes_total",
        "counter",
        "Bytes of task inputs workers fetched from each other since start.",
        s.counters.transfer_bytes,
    );
    let h = &s.histogram;
    o.family(
        "tessera_task_duration_seconds",
        "histogram",
        "How long task kernels ran on the workers.",
    );
    for (b, c) in h.bounds.iter().zip(h.cumulative()) {
        o.sample(
            "tessera_task_duration_seconds_bucket",
            &[("le", &bound(*b))],
            c,
        );
    }
    o.sample("tessera_task_duration_seconds_sum", &[], h.sum);
    o.sample("tessera_task_duration_seconds_count", &[], h.count);
    o.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(bound(f64::INFINITY), "+Inf");
        assert_eq!(bound(0.001), "0.001");
    }
}
