//! The scheduler's dashboard driven the way an operator does: real scheduler and worker binaries, a
//! job run through the client, then `/metrics` read with a bearer token and parsed by a strict
//! Prometheus text-format parser (below) whose counters are checked against the job's own task graph,
//! `/health`, refusals without or with a wrong token, the URL from `tessera-scheduler dashboard-url`,
//! the live event stream (read as a browser's `EventSource` does, over chunked HTTP/1.1) bringing the
//! job's tasks and progress as it runs, and the page itself loaded in headless Chromium (skipped, saying why, when no browser is
//! installed; `.ci/run` installs Debian's `chromium`), and a page kept open in headless Chromium over
//! the DevTools protocol while a persist and a job run, read from the live DOM: both worker rows come to
//! show the kept chunks, the job appears and reaches 100%, and the page never reloads. With `TESSERA_DASHBOARD_SCREENSHOT=FILE` the
//! test also saves a screenshot of the page there (how the README's docs/dashboard.png was made).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{Cluster, free_port, local, output_ok, poll};
use tessera::Client;
use tessera::graph::expand::TaskGraph;

/// A response: status code, headers (lower-case names), body.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A plain HTTP/1.1 GET (the dashboard serves fixed-length bodies on these routes).
fn get(address: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut s = TcpStream::connect(address).expect("connect to the dashboard");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    s.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8(raw).expect("a UTF-8 response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a head and a body");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Response {
        status,
        headers,
        body: body.to_string(),
    }
}

/// An open `/events` stream: server-sent events over chunked HTTP/1.1, read one event at a time.
struct Events {
    reader: BufReader<TcpStream>,
    pending: String,
}

impl Events {
    fn open(address: &str, bearer: &str) -> Events {
        let mut s = TcpStream::connect(address).expect("connect to the dashboard");
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        write!(
            s,
            "GET /events HTTP/1.1\r\nHost: {address}\r\nAuthorization: {bearer}\r\nAccept: text/event-stream\r\n\r\n"
        )
        .unwrap();
        let mut reader = BufReader::new(s);
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            head.push(line.trim_end().to_ascii_lowercase());
        }
        assert!(head[0].contains(" 200 "), "{head:?}");
        assert!(
            head.iter().any(|h| h == "content-type: text/event-stream"),
            "{head:?}"
        );
        assert!(
            head.iter().any(|h| h == "transfer-encoding: chunked"),
            "{head:?}"
        );
        Events {
            reader,
            pending: String::new(),
        }
    }

    /// The next event's data, parsed (keep-alive comments are skipped).
    fn next(&mut self) -> serde_json::Value {
        loop {
            if let Some(end) = self.pending.find("\n\n") {
                let event: String = self.pending.drain(..end + 2).collect();
                let data: String = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:")))
                    .collect::<Vec<_>>()
                    .join("\n");
                if data.is_empty() {
                    continue;
                }
                return serde_json::from_str(&data).unwrap_or_else(|e| panic!("{e}: {data}"));
            }
            // One chunk: its size in hex, the bytes, CRLF.
            let mut size = String::new();
            self.reader.read_line(&mut size).unwrap();
            let size = usize::from_str_radix(size.trim(), 16).expect("a chunk size");
            assert!(size > 0, "the event stream ended");
            let mut chunk = vec![0; size + 2];
            self.reader.read_exact(&mut chunk).unwrap();
            self.pending
                .push_str(std::str::from_utf8(&chunk[..size]).unwrap());
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// A strict parser of Prometheus' text exposition format (0.0.4): every sample belongs to a family
// declared by `# TYPE` before it, names and labels are well formed, values are floats, counters end
// in `_total`, and a histogram's buckets are cumulative, end in `+Inf`, and agree with `_count`.

type Labels = BTreeMap<String, String>;

#[derive(Debug, Default)]
struct Metrics {
    types: HashMap<String, String>,
    samples: Vec<(String, Labels, f64)>,
}

impl Metrics {
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let want: Labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let found: Vec<f64> = self
            .samples
            .iter()
            .filter(|(n, l, _)| n == name && *l == want)
            .map(|(_, _, v)| *v)
            .collect();
        assert_eq!(found.len(), 1, "one sample {name}{labels:?} in /metrics");
        found[0]
    }

    fn all(&self, name: &str) -> Vec<(&Labels, f64)> {
        self.samples
            .iter()
            .filter(|(n, _, _)| n == name)
            .map(|(_, l, v)| (l, *v))
            .collect()
    }
}

fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn parse_value(v: &str) -> Result<f64, String> {
    match v {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => v.parse().map_err(|_| format!("bad value {v:?}")),
    }
}

/// `{a="x",b="y\"z"}` → labels; returns the rest of the line after `}`.
fn parse_labels(s: &str) -> Result<(Labels, &str), String> {
    let mut labels = Labels::new();
    let mut rest = s.strip_prefix('{').ok_or("labels must start with {")?;
    loop {
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        }
        let (name, r) = rest.split_once("=\"").ok_or("a label needs =\"")?;
        if !valid_name(name) || name.starts_with("__") {
            return Err(format!("bad label name {name:?}"));
        }
        let mut value = String::new();
        let mut chars = r.char_indices();
        let end = loop {
            match chars.next().ok_or("unterminated label value")? {
                (i, '"') => break i,
                (_, '\\') => match chars.next().ok_or("dangling escape")?.1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    c => return Err(format!("bad escape \\{c}")),
                },
                (_, c) => value.push(c),
            }
        };
        if labels.insert(name.to_string(), value).is_some() {
            return Err(format!("label {name} twice"));
        }
        rest = &r[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

fn parse_metrics(text: &str) -> Result<Metrics, String> {
    let mut m = Metrics::default();
    let mut helped = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let at = |e: String| format!("line {}: {e}: {line:?}", n + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("HELP"), Some(name), Some(_)) => {
                    if helped.insert(name.to_string(), ()).is_some() {
                        return Err(at("HELP twice".into()));
                    }
                }
                (Some("TYPE"), Some(name), Some(kind)) => {
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                        return Err(at(format!("unknown type {kind}")));
                    }
                    if kind == "counter" && !name.ends_with("_total") {
                        return Err(at("a counter's name must end in _total".into()));
                    }
                    if m.types.insert(name.to_string(), kind.to_string()).is_some() {
                        return Err(at("TYPE twice".into()));
                    }
                }
                _ => return Err(at("malformed comment".into())),
            }
            continue;
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| at("no value".into()))?;
        let name = &line[..name_end];
        if !valid_name(name) {
            return Err(at(format!("bad metric name {name:?}")));
        }
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..]).map_err(at)?
        } else {
            (Labels::new(), &line[name_end..])
        };
        let value = rest
            .strip_prefix(' ')
            .ok_or_else(|| at("no value".into()))?;
        let value = parse_value(value.trim_end()).map_err(at)?;
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .filter_map(|s| name.strip_suffix(s))
            .find(|f| m.types.get(*f).is_some_and(|k| k == "histogram"))
            .unwrap_or(name);
        if !m.types.contains_key(family) {
            return Err(at(format!("sample of {family} before its # TYPE")));
        }
        if m.types[family] == "histogram" && name.ends_with("_bucket") && !labels.contains_key("le")
        {
            return Err(at("a bucket without le".into()));
        }
        m.samples.push((name.to_string(), labels, value));
    }
    for (family, kind) in &m.types {
        if kind != "histogram" {
            continue;
        }
        let buckets = m.all(&format!("{family}_bucket"));
        let les: Vec<f64> = buckets
            .iter()
            .map(|(l, _)| parse_value(&l["le"]))
            .collect::<Result<_, _>>()?;
        if les.last() != Some(&f64::INFINITY) || les.windows(2).any(|w| w[0] >= w[1]) {
            return Err(format!("{family}: bucket bounds must increase up to +Inf"));
        }
        if buckets.windows(2).any(|w| w[0].1 > w[1].1) {
            return Err(format!("{family}: buckets must be cumulative"));
        }
        let count = m.value(&format!("{family}_count"), &[]);
        if buckets.last().map(|b| b.1) != Some(count) {
            return Err(format!("{family}: the +Inf bucket differs from _count"));
        }
    }
    Ok(m)
}

#[test]
fn the_metrics_parser_rejects_malformed_text() {
    let good = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"q\\\"\"} 3\n";
    assert_eq!(
        parse_metrics(good)
            .unwrap()
            .value("a_total", &[("x", "q\"")]),
        3.0
    );
    for bad in [
        "a_total 3\n",                  // no TYPE
        "# TYPE a counter\na 1\n",      // counter without _total
        "# TYPE a gauge\na{x=\"1} 1\n", // unterminated label
        "# TYPE a gauge\na one\n",      // bad value
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n", // no +Inf
    ] {
        assert!(parse_metrics(bad).is_err(), "accepted {bad:?}");
    }
}

// ---------------------------------------------------------------------------------------------------

/// A browser to load the page with, if one is installed.
fn chromium() -> Option<PathBuf> {
    [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ]
    .iter()
    .find_map(|name| {
        std::env::var_os("PATH")?
            .to_str()?
            .split(':')
            .map(|d| PathBuf::from(d).join(name))
            .find(|p| p.is_file())
    })
}

fn headless(browser: &PathBuf, profile: &std::path::Path) -> Command {
    let mut c = Command::new(browser);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--hide-scrollbars",
        // The DOM is dumped once the page has loaded; its script draws the snapshot the page is
        // served with before that. (A virtual-time budget would wait for ever on the event stream.)
        "--timeout=10000",
        "--window-size=1400,1000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

#[test]
fn dashboard_shows_the_cluster_and_its_metrics_match_a_job() {
    let port = free_port();
    let dashboard = format!("127.0.0.1:{port}");
    let cluster = Cluster::start_with(2, &["--dashboard", &dashboard]);
    let client = cluster.client();

    // The URL an operator opens, from the subcommand; the token is derived, the secret not shown.
    let url = cluster.dashboard_url(&dashboard);
    let prefix = format!("http://{dashboard}/?token=");
    let token = url.strip_prefix(&prefix).expect("http://ADDR/?token=...");
    assert_eq!(token.len(), 64, "an HMAC-SHA256 in hex: {url}");
    let secret = std::fs::read(&cluster.secret_file).unwrap();
    let secret_text = String::from_utf8_lossy(&secret);
    assert!(
        !url.contains(secret_text.trim()),
        "the URL must not carry the secret"
    );

    // No token, a wrong one: 401 with one line. /health needs none.
    for headers in [vec![], vec![("Authorization", "Bearer 00ff")]] {
        for path in ["/", "/metrics", "/events", "/api/snapshot"] {
            let r = get(&dashboard, path, &headers);
            assert_eq!(r.status, 401, "{path} with {headers:?}");
            assert_eq!(r.body.trim_end().lines().count(), 1, "{:?}", r.body);
            assert!(!r.body.contains(token), "the token leaks in a refusal");
        }
    }
    let r = get(&dashboard, "/?token=nope", &[]);
    assert_eq!(r.status, 401);
    let health = get(&dashboard, "/health", &[]);
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    // The token in the URL becomes an HttpOnly cookie, and the address bar loses it.
    let r = get(&dashboard, &format!("/?token={token}"), &[]);
    assert!(
        (300..400).contains(&r.status),
        "a redirect, got {}",
        r.status
    );
    assert_eq!(r.header("location"), Some("/"));
    let cookie = r.header("set-cookie").expect("a cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains(token));
    let cookie = cookie.split(';').next().unwrap().to_string();
    let page = get(&dashboard, "/", &[("Cookie", &cookie)]);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("tessera scheduler") && page.body.contains("/app.js"));

    // The live stream, opened before the job: its first event is the whole view (two workers, no
    // job yet).
    let bearer = format!("Bearer {token}");
    let mut events = Events::open(&dashboard, &bearer);
    let first = events.next();
    assert_eq!(first["workers"].as_array().unwrap().len(), 2, "{first}");
    assert_eq!(first["jobs"].as_array().unwrap().len(), 0, "{first}");

    // A job: the mean of 16 random chunks. Its task count comes from the engine's own expansion of the
    // graph the client sends (optimized, as `compute_on` does).
    let x = tessera::default_rng(7)
        .random(&[1000, 1000], [250, 250])
        .unwrap();
    let total = x.mean().unwrap();
    let tasks = TaskGraph::expand(tessera::optimize::optimize(total.graph()))
        .unwrap()
        .tasks
        .len();
    assert!(
        tasks > 16,
        "the 16 random chunks and the mean's tasks: {tasks}"
    );
    let remote = total.compute_on(&client).unwrap();
    common::assert_same_bits(&common::local(&total), &remote, "the job");

    // The stream brings the job without a new request: every task once in the task stream, each
    // on a worker thread, then the job complete with every layer done.
    let mut seen = std::collections::BTreeSet::new();
    let job = poll(
        "the job, complete, in the event stream",
        Duration::from_secs(20),
        |last| {
            let e = events.next();
            for t in e["tasks"].as_array().unwrap() {
                assert!(t["thread"].as_u64().unwrap() >= 1, "{t}");
                assert!(t["end_ms"].as_f64() >= t["start_ms"].as_f64(), "{t}");
                seen.insert(t["seq"].as_u64().unwrap());
            }
            *last = e.to_string();
            let job = e["jobs"].as_array().unwrap().first().cloned()?;
            (job["state"] == "completed" && seen.len() >= tasks).then_some(job)
        },
    );
    assert_eq!(seen.len(), tasks, "each task once in the stream");
    assert_eq!(job["tasks"].as_u64(), Some(tasks as u64));
    assert_eq!(job["done"].as_u64(), Some(tasks as u64));
    let layers = job["layers"].as_array().unwrap();
    assert_eq!(
        layers
            .iter()
            .map(|l| l["tasks"].as_u64().unwrap())
            .sum::<u64>(),
        tasks as u64
    );
    // The layer over the 16 chunks of `x` (whatever the optimizer fused into it), all done.
    let per_chunk = layers
        .iter()
        .find(|l| l["tasks"].as_u64() == Some(16))
        .unwrap_or_else(|| panic!("a layer of 16 tasks: {layers:?}"));
    assert_eq!(per_chunk["done"].as_u64(), Some(16), "{per_chunk}");
    let per_chunk_name = per_chunk["name"].as_str().unwrap().to_string();
    drop(events);

    let auth = [("Authorization", bearer.as_str())];
    let metrics = poll(
        "the job to be counted as completed in /metrics",
        Duration::from_secs(10),
        |last| {
            let r = get(&dashboard, "/metrics", &auth);
            assert_eq!(r.status, 200);
            assert!(
                r.header("content-type")
                    .unwrap()
                    .starts_with("text/plain; version=0.0.4")
            );
            let m = parse_metrics(&r.body).unwrap_or_else(|e| panic!("{e}\n{}", r.body));
            *last = r.body.clone();
            (m.value("tessera_jobs_total", &[("state", "completed")]) == 1.0).then_some(m)
        },
    );
    let n = tasks as f64;
    assert_eq!(metrics.value("tessera_workers", &[]), 2.0);
    assert_eq!(
        metrics.value("tessera_jobs_total", &[("state", "submitted")]),
        1.0
    );
    assert_eq!(
        metrics.value("tessera_jobs_total", &[("state", "failed")]),
        0.0
    );
    assert_eq!(metrics.value("tessera_jobs", &[]), 0.0);
    assert_eq!(metrics.value("tessera_tasks_completed_total", &[]), n);
    assert_eq!(metrics.value("tessera_tasks_failed_total", &[]), 0.0);
    assert_eq!(metrics.value("tessera_task_duration_seconds_count", &[]), n);
    assert!(metrics.value("tessera_task_duration_seconds_sum", &[]) > 0.0);
    for state in ["waiting", "ready", "running", "done", "released"] {
        assert_eq!(
            metrics.value("tessera_tasks", &[("state", state)]),
            0.0,
            "{state}"
        );
    }
    // Each 250×250 f64 chunk is 500,000 bytes; what moved between the workers was whole chunks or
    // small partial results, never more than every chunk once plus a little per task.
    let transfer = metrics.value("tessera_transfer_bytes_total", &[]);
    assert!(transfer <= 16.0 * 500_000.0 + n * 1024.0, "{transfer}");
    for worker in &cluster.worker_addresses {
        let worker = worker.as_str();
        assert_eq!(
            metrics.value("tessera_worker_threads", &[("worker", worker)]),
            1.0
        );
        assert_eq!(
            metrics.value(
                "tessera_worker_memory_bytes",
                &[("worker", worker), ("kind", "limit")]
            ),
            (1u64 << 30) as f64
        );
    }

    // The page in a real browser: the workers and the finished job with its progress per layer.
    let Some(browser) = chromium() else {
        println!(
            "skipping the browser check: no chromium on PATH (`apt-get install chromium`; .ci/run does)"
        );
        return;
    };
    let profile = tempfile::tempdir().unwrap();
    let out = headless(&browser, profile.path())
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("data-updates="),
        "the page's script never drew the scheduler's snapshot:\n{dom}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for address in &cluster.worker_addresses {
        assert!(
            dom.contains(address.as_str()),
            "worker {address} on the page:\n{dom}"
        );
    }
    assert!(dom.contains("id=\"worker-1\"") && dom.contains("id=\"worker-2\""));
    assert!(dom.contains("data-state=\"completed\""), "{dom}");
    assert!(
        dom.contains(&format!("{tasks} / {tasks} tasks (100%)")),
        "{dom}"
    );
    // The layer over the 16 chunks: all done.
    assert!(
        dom.contains(&format!("{per_chunk_name}</span>")) && dom.contains(">16 / 16<"),
        "{dom}"
    );
    // The task stream drew the job's tasks.
    assert!(dom.matches("class=\"task\"").count() >= tasks, "{dom}");
    if let Some(path) = std::env::var_os("TESSERA_DASHBOARD_SCREENSHOT") {
        output_ok(
            headless(&browser, profile.path())
                .arg(format!("--screenshot={}", PathBuf::from(&path).display()))
                .arg(&url),
        );
    }
}

#[test]
fn a_taken_dashboard_port_does_not_stop_the_scheduler() {
    // Hold the port, then start a cluster whose dashboard wants it: the cluster still works.
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = holder.local_addr().unwrap().to_string();
    let cluster = Cluster::start_with(1, &["--dashboard", &taken]);
    cluster.assert_headline_job_is_exact();
    // And --no-dashboard serves nothing.
    let port = free_port();
    let quiet = Cluster::start_with(
        1,
        &[
            "--no-dashboard",
            "--dashboard",
            &format!("127.0.0.1:{port}"),
        ],
    );
    quiet.assert_headline_job_is_exact();
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

// ---------------------------------------------------------------------------------------------------
// The page kept open in a browser while the cluster works: headless Chromium driven over the DevTools
// protocol on a pipe (`--remote-debugging-pipe`: NUL-terminated JSON messages, fd 3 into the browser,
// fd 4 out of it), so the test reads the live DOM as it changes, without ever reloading the page.

/// A headless Chromium spoken to over its DevTools pipe; killed (and its profile removed) on drop.
struct Browser {
    child: std::process::Child,
    to_browser: std::io::PipeWriter,
    replies: std::sync::mpsc::Receiver<serde_json::Value>,
    next_id: u64,
    /// The session attached to the page under test, once attached.
    session: Option<String>,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn launch(browser: &PathBuf) -> Browser {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let profile = tempfile::tempdir().unwrap();
        let (browser_reads, to_browser) = std::io::pipe().unwrap();
        let (from_browser, browser_writes) = std::io::pipe().unwrap();
        let (r, w) = (browser_reads.as_raw_fd(), browser_writes.as_raw_fd());
        // Not `headless()`'s flags: its --timeout stops the page's loading after a while, which
        // a page kept open must not have.
        let mut command = Command::new(browser);
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--remote-debugging-pipe",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        // SAFETY: only async-signal-safe calls (fcntl, dup2) between fork and exec. Both ends are
        // first copied above 100 so that neither is overwritten by the other's dup2 (they may be 3
        // or 4 themselves); dup2's copies do not close on exec, unlike the originals.
        unsafe {
            command.pre_exec(move || {
                let r = libc::fcntl(r, libc::F_DUPFD, 100);
                let w = libc::fcntl(w, libc::F_DUPFD, 100);
                if r < 0 || w < 0 || libc::dup2(r, 3) < 0 || libc::dup2(w, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("start chromium");
        // The browser's ends belong to it now: without closing ours, its exit would never end the
        // reader below.
        drop((browser_reads, browser_writes));
        let (tx, replies) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(from_browser);
            loop {
                let mut message = Vec::new();
                match reader.read_until(0, &mut message) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                message.pop_if(|b| *b == 0);
                let Ok(value) = serde_json::from_slice(&message) else {
                    continue;
                };
                if tx.send(value).is_err() {
                    return;
                }
            }
        });
        Browser {
            child,
            to_browser,
            replies,
            next_id: 0,
            session: None,
            _profile: profile,
        }
    }

    /// Sends one command (to a page's session when given) and returns its result, or the error the
    /// browser answered; events and other replies in between are skipped.
    fn try_call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: serde_json::Value,
    ) -> Result<serde_json::Value, serde_json::Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = serde_json::json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            message["sessionId"] = s.into();
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        self.to_browser
            .write_all(&bytes)
            .unwrap_or_else(|e| panic!("{method}: the browser's pipe: {e}"));
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let reply = self
                .replies
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("{method}: no reply from the browser ({e})"));
            if reply["id"] == id {
                return match reply.get("error") {
                    Some(e) => Err(e.clone()),
                    None => Ok(reply["result"].clone()),
                };
            }
        }
    }

    fn call(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        self.try_call(None, method, params)
            .unwrap_or_else(|e| panic!("{method}: {e}"))
    }

    /// Opens `url` in a new page (its target id is kept to find the page again).
    fn open(&mut self, url: &str) -> String {
        let target = self.call("Target.createTarget", serde_json::json!({ "url": url }));
        target["targetId"]
            .as_str()
            .expect("a target id")
            .to_string()
    }

    /// Evaluates `expression` in the page of `target` and returns its value (JSON-serialisable).
    /// The session is opened on first use and again when the browser dropped it (it may, when the
    /// page moves from the blank document to the dashboard's origin); the page itself is the same.
    fn eval(&mut self, target: &str, expression: &str) -> serde_json::Value {
        for _ in 0..5 {
            let session = match self.session.clone() {
                Some(s) => s,
                None => {
                    let attached = self.call(
                        "Target.attachToTarget",
                        serde_json::json!({ "targetId": target, "flatten": true }),
                    );
                    let s = attached["sessionId"]
                        .as_str()
                        .expect("a session id")
                        .to_string();
                    self.session = Some(s.clone());
                    s
                }
            };
            match self.try_call(
                Some(&session),
                "Runtime.evaluate",
                serde_json::json!({ "expression": expression, "returnByValue": true }),
            ) {
                Ok(r) => {
                    // A document being replaced can fail an evaluation: no value yet.
                    if r.get("exceptionDetails").is_some() {
                        return serde_json::Value::Null;
                    }
                    return r["result"]["value"].clone();
                }
                Err(_) => {
                    self.session = None;
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
        panic!("cannot evaluate in page {target}")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the test reads of the open page: the connection, how many snapshots the script drew, a mark
/// the test leaves on `window` (gone if the page reloaded), the worker rows' cells and the jobs.
const PAGE_STATE: &str = r##"(() => {
  // null until the dashboard's page is the document (the browser starts on about:blank, then
  // follows the token redirect).
  const conn = document.getElementById("conn");
  if (!conn) return null;
  return {
    conn: conn.className,
    updates: Number(document.body.dataset.updates || 0),
    mark: window.__tesseraTestMark || null,
    workers: [...document.querySelectorAll("#workers tr.worker")].map((tr) => ({
      id: tr.id,
      cells: [...tr.children].map((td) => td.textContent),
    })),
    jobs: [...document.querySelectorAll("#jobs .job")].map((j) => ({
      id: j.id,
      state: j.dataset.state,
      progress: j.querySelector(".progress").textContent,
    })),
  };
})()"##;

/// "12 / 30 tasks (40%)" as (12, 30).
fn job_progress(text: &str) -> (u64, u64) {
    let (done, rest) = text.split_once(" / ").expect("done / total");
    let total = rest.split_once(' ').expect("total tasks").0;
    (done.parse().unwrap(), total.parse().unwrap())
}

#[test]
fn an_open_dashboard_page_follows_the_cluster_live_without_reloading() {
    let Some(browser) = chromium() else {
        println!(
            "skipping the live browser check: no chromium on PATH (`apt-get install chromium`; .ci/run does)"
        );
        return;
    };
    let port = free_port();
    let dashboard = format!("127.0.0.1:{port}");
    let cluster = Cluster::start_with(2, &["--dashboard", &dashboard]);
    let url = cluster.dashboard_url(&dashboard);

    // The page opens before any job: both workers, holding nothing, and no job; the event stream
    // is connected.
    let mut chrome = Browser::launch(&browser);
    let page = chrome.open(&url);
    let before = poll(
        "the page connected, showing two idle workers and no job",
        Duration::from_secs(30),
        |last| {
            let s = chrome.eval(&page, PAGE_STATE);
            *last = s.to_string();
            (s["conn"] == "live"
                && s["workers"].as_array()?.len() == 2
                && s["jobs"].as_array()?.is_empty())
            .then_some(s)
        },
    );
    for w in before["workers"].as_array().unwrap() {
        assert_eq!(w["cells"][4], "0", "no chunks held yet: {w}");
    }
    // A mark on the page's window: a reload would lose it.
    chrome.eval(&page, "window.__tesseraTestMark = 'still the same page'");

    // Persist an array: its chunks stay on the workers, so both rows must come to show them.
    let client = cluster.client();
    let x = tessera::default_rng(5)
        .random(&[1200, 900], [300, 300])
        .unwrap();
    let kept = client.persist(&(&x * 2.0)).unwrap();
    let persisted = format!("job-{:016x}", Client::persisted_job(&kept).unwrap());
    poll(
        "both worker rows show the persisted chunks",
        Duration::from_secs(20),
        |last| {
            let s = chrome.eval(&page, PAGE_STATE);
            *last = s.to_string();
            let rows = s["workers"].as_array()?;
            let held: u64 = rows
                .iter()
                .map(|w| w["cells"][4].as_str().unwrap().parse::<u64>().unwrap())
                .sum();
            (rows.iter().all(|w| w["cells"][4] != "0") && held == 12).then_some(())
        },
    );

    // A job reading them, submitted while the page watches: it appears, its progress only moves
    // forward, and it ends completed at 100%, all without a reload.
    let job = client.submit(&kept.sum().unwrap());
    let mut seen: Vec<(u64, u64)> = Vec::new();
    let done = poll(
        "the job appears on the open page and reaches 100%",
        Duration::from_secs(60),
        |last| {
            let s = chrome.eval(&page, PAGE_STATE);
            *last = s.to_string();
            let j = s["jobs"]
                .as_array()?
                .iter()
                .find(|j| j["id"] != persisted.as_str())?
                .clone();
            let (d, t) = job_progress(j["progress"].as_str()?);
            seen.push((d, t));
            (j["state"] == "completed" && t > 0 && d == t).then_some(s)
        },
    );
    assert!(
        seen.windows(2).all(|w| w[0].0 <= w[1].0),
        "progress went backwards: {seen:?}"
    );
    let total: f64 = *job.result::<f64>().unwrap().first().unwrap();
    let expected: f64 = *local(&(&x * 2.0).sum().unwrap())
        .into_typed::<f64>()
        .unwrap()
        .first()
        .unwrap();
    assert_eq!(total.to_bits(), expected.to_bits());
    let (tasks, _) = job_progress(
        done["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["id"] != persisted.as_str())
            .unwrap()["progress"]
            .as_str()
            .unwrap(),
    );
    assert!(tasks >= 12, "one task per kept chunk at least, got {tasks}");
    assert_eq!(done["mark"], "still the same page", "the page reloaded");
    assert!(
        done["updates"].as_u64().unwrap() > before["updates"].as_u64().unwrap(),
        "{done}"
    );

    // Releasing the kept chunks empties the worker rows again, on the same page.
    drop(kept);
    poll(
        "the worker rows show the chunks released",
        Duration::from_secs(20),
        |last| {
            let s = chrome.eval(&page, PAGE_STATE);
            *last = s.to_string();
            (s["mark"] == "still the same page"
                && s["workers"]
                    .as_array()?
                    .iter()
                    .all(|w| w["cells"][4] == "0"))
            .then_some(())
        },
    );
}
