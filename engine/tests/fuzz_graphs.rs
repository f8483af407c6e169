//! A bounded fuzz test of what a scheduler does with a graph it receives: decode → validate (inside
//! `graph_from_proto`) → `limits::check` → `expand_limited`. Inputs are real graphs (optimized graphs
//! of real expressions, encoded with `graph_to_proto`) mutated at the protobuf wire-format level, so
//! every field of every message is reachable without listing them: a varint set to 0, 1, 2^31, 2^32,
//! u64::MAX or a random value (chunk sizes, axes, indices, seeds, enum values out of range …), a string
//! changed (layer ids renamed), a repeated field dropped, duplicated or moved (layers, inputs,
//! outputs, axes), plus random byte flips and truncations of the encoded message.
//!
//! For each input the test asserts that nothing panics (the mutation is in the failure message) and
//! that the peak memory live while it is processed stays under 256 MiB, measured by a counting global
//! allocator. An allocation that would take the process past 1 GiB is refused, which aborts the test
//! with the mutation printed, rather than letting the machine swap. The test stops after a case count
//! or 20 s of wall clock per test, whichever comes first.

#![cfg(feature = "distributed")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ndarray::{ArrayD, IxDyn};
use proptest::prelude::*;
use prost::Message;
use tessera::graph::expand::TaskGraph;
use tessera::graph::limits::{self, PlanLimits};
use tessera::optimize::optimize;
use tessera::wire::{graph_from_proto, graph_to_proto};
use tessera::{
    ReduceOptions, arange, concatenate, default_rng, from_array, linspace, s, stack, where_,
};
use tessera_proto::v1 as pb;

// ---------------------------------------------------------------------------------------------
// counting allocator

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
const PEAK_LIMIT: usize = 256 << 20;
const HARD_CAP: usize = 1 << 30;

/// The mutation being processed, printed if an allocation is refused (a fixed buffer: the allocator
/// must not allocate to report).
static CURRENT: Mutex<([u8; 2048], usize)> = Mutex::new(([0; 2048], 0));

fn set_current(text: &str) {
    let mut c = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
    let n = text.len().min(c.0.len());
    c.0[..n].copy_from_slice(&text.as_bytes()[..n]);
    c.1 = n;
}

// SAFETY: allocations are forwarded to the system allocator unchanged, except that one that would
// take live memory past HARD_CAP returns null (which the caller handles as an allocation failure).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        if live > HARD_CAP {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            if let Ok(c) = CURRENT.try_lock() {
                let _ =
                    std::io::stderr().write_all(b"refused a huge allocation while processing: ");
                let _ = std::io::stderr().write_all(&c.0[..c.1]);
                let _ = std::io::stderr().write_all(b"\n");
            }
            return std::ptr::null_mut();
        }
        PEAK.fetch_max(live, Ordering::Relaxed);
        // SAFETY: the caller's contract for `layout` is passed on.
        let p = unsafe { System.alloc(layout) };
        if p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The two tests share the allocator's counters: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

// ---------------------------------------------------------------------------------------------
// the graphs

fn graphs() -> Vec<Vec<u8>> {
    let x = default_rng(7).random(&[40, 30], [7, 9]).unwrap();
    let sq = default_rng(8).standard_normal(&[24, 24], [5, 7]).unwrap();
    let small = from_array(
        ArrayD::from_shape_fn(IxDyn(&[6, 5]), |i| (i[0] * 5 + i[1]) as f64),
        [4, 2],
    )
    .unwrap();
    let cube = default_rng(9).random(&[6, 8, 10], [3, 4, 5]).unwrap();
    let ints = arange::<i64>(0, 60, 1, [7]).unwrap();
    let exprs = vec![
        x.mean().unwrap(),
        x.slice(s![5..35;3, ..;-2]).unwrap(),
        (&sq + &sq.t()).mean_axis(0).unwrap(),
        sq.matmul(&sq.t()).unwrap(),
        x.t().matmul(&x).unwrap(),
        concatenate(&[&small, &(&small * 2.0)], 0).unwrap(),
        x.rechunk([11, 4]).unwrap().std_axis(1, 1.0).unwrap(),
        cube.sum_with(&ReduceOptions::axes([0, 2]).split_every(2).keepdims(true))
            .unwrap(),
        cube.argmax_axis(1).unwrap(),
        stack(&[&small, &small.t().reshape(&[6, 5]).unwrap()], 1).unwrap(),
        where_(ints.gt(20).unwrap(), &ints, 0)
            .unwrap()
            .sum()
            .unwrap(),
        (&linspace(0.0, 1.0, 30, true, [7]).unwrap() * &x.slice(s![0, ..]).unwrap())
            .var_axis(0, 0.0)
            .unwrap(),
    ];
    exprs
        .iter()
        .map(|a| {
            graph_to_proto(&optimize(a.graph()))
                .unwrap()
                .encode_to_vec()
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// protobuf wire format, generically

#[derive(Clone, Debug)]
enum Val {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Msg(Vec<Field>),
    Packed(Vec<u64>),
    Bytes(Vec<u8>),
}

#[derive(Clone, Debug)]
struct Field {
    num: u64,
    val: Val,
}

fn read_varint(b: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..70).step_by(7) {
        let byte = *b.get(*at)?;
        *at += 1;
        if shift == 63 && byte > 1 {
            return None;
        }
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn parse_msg(b: &[u8], depth: u32) -> Option<Vec<Field>> {
    let mut at = 0;
    let mut out = Vec::new();
    while at < b.len() {
        let key = read_varint(b, &mut at)?;
        let (num, wt) = (key >> 3, key & 7);
        if num == 0 {
            return None;
        }
        let val = match wt {
            0 => Val::Varint(read_varint(b, &mut at)?),
            1 => {
                let s = b.get(at..at + 8)?;
                at += 8;
                Val::Fixed64(u64::from_le_bytes(s.try_into().ok()?))
            }
            5 => {
                let s = b.get(at..at + 4)?;
                at += 4;
                Val::Fixed32(u32::from_le_bytes(s.try_into().ok()?))
            }
            2 => {
                let len = read_varint(b, &mut at)? as usize;
                let s = b.get(at..at.checked_add(len)?)?;
                at += len;
                parse_len(s, depth)
            }
            _ => return None,
        };
        out.push(Field { num, val });
    }
    Some(out)
}

/// A length-delimited value: a message if it parses as one, else packed varints, else bytes. The
/// guess can be wrong (a string that happens to parse); the mutations are then still valid bytes.
fn parse_len(s: &[u8], depth: u32) -> Val {
    if depth < 12
        && !s.is_empty()
        && let Some(m) = parse_msg(s, depth + 1)
    {
        return Val::Msg(m);
    }
    let mut at = 0;
    let mut vs = Vec::new();
    while at < s.len() {
        match read_varint(s, &mut at) {
            Some(v) => vs.push(v),
            None => return Val::Bytes(s.to_vec()),
        }
    }
    if s.is_empty() {
        Val::Bytes(Vec::new())
    } else {
        Val::Packed(vs)
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn encode(fields: &[Field], out: &mut Vec<u8>) {
    for f in fields {
        let wt = match f.val {
            Val::Varint(_) => 0,
            Val::Fixed64(_) => 1,
            Val::Fixed32(_) => 5,
            _ => 2,
        };
        put_varint(out, (f.num << 3) | wt);
        match &f.val {
            Val::Varint(v) => put_varint(out, *v),
            Val::Fixed64(v) => out.extend_from_slice(&v.to_le_bytes()),
            Val::Fixed32(v) => out.extend_from_slice(&v.to_le_bytes()),
            Val::Msg(m) => {
                let mut inner = Vec::new();
                encode(m, &mut inner);
                put_varint(out, inner.len() as u64);
                out.extend_from_slice(&inner);
            }
            Val::Packed(vs) => {
                let mut inner = Vec::new();
                for &v in vs {
                    put_varint(&mut inner, v);
                }
                put_varint(out, inner.len() as u64);
                out.extend_from_slice(&inner);
            }
            Val::Bytes(b) => {
                put_varint(out, b.len() as u64);
                out.extend_from_slice(b);
            }
        }
    }
}

/// SplitMix64: the mutation choices, from proptest's seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Number of places a mutation can land: every field, and every element of a packed list.
fn count(fields: &[Field]) -> usize {
    fields
        .iter()
        .map(|f| {
            1 + match &f.val {
                Val::Msg(m) => count(m),
                Val::Packed(v) => v.len(),
                _ => 0,
            }
        })
        .sum()
}

const NUMBERS: [u64; 7] = [0, 1, 2, 1 << 31, 1 << 32, u64::MAX, 3];

fn interesting(rng: &mut Rng) -> u64 {
    match rng.below(NUMBERS.len() + 2) {
        i if i < NUMBERS.len() => NUMBERS[i],
        i if i == NUMBERS.len() => rng.next(),
        _ => rng.next() % 64,
    }
}

/// Applies one mutation at place `target` (in `count` order); returns what it did.
fn mutate_at(
    fields: &mut Vec<Field>,
    target: &mut usize,
    rng: &mut Rng,
    path: &str,
) -> Option<String> {
    for i in 0..fields.len() {
        let here = format!("{path}/{}", fields[i].num);
        if *target == 0 {
            return Some(mutate_field(fields, i, rng, &here));
        }
        *target -= 1;
        match &mut fields[i].val {
            Val::Msg(m) => {
                if let Some(d) = mutate_at(m, target, rng, &here) {
                    return Some(d);
                }
            }
            Val::Packed(v) => {
                if *target < v.len() {
                    let x = interesting(rng);
                    v[*target] = x;
                    return Some(format!("{here}[{}] = {x}", *target));
                }
                *target -= v.len();
            }
            _ => {}
        }
    }
    None
}

fn mutate_field(fields: &mut Vec<Field>, i: usize, rng: &mut Rng, here: &str) -> String {
    match rng.below(6) {
        0 => {
            fields.remove(i);
            format!("{here} removed")
        }
        1 => {
            let f = fields[i].clone();
            let at = rng.below(fields.len() + 1);
            fields.insert(at, f);
            format!("{here} duplicated to position {at}")
        }
        2 => {
            let f = fields.remove(i);
            let at = rng.below(fields.len() + 1);
            fields.insert(at, f);
            format!("{here} moved to position {at}")
        }
        _ => match &mut fields[i].val {
            Val::Varint(v) => {
                *v = interesting(rng);
                format!("{here} = {v}")
            }
            Val::Fixed64(v) => {
                *v = match rng.below(3) {
                    0 => f64::NAN.to_bits(),
                    1 => f64::INFINITY.to_bits(),
                    _ => rng.next(),
                };
                format!("{here} = 0x{v:x} (64-bit)")
            }
            Val::Fixed32(v) => {
                *v = rng.next() as u32;
                format!("{here} = 0x{v:x} (32-bit)")
            }
            Val::Bytes(b) => {
                if b.is_empty() {
                    b.push(b'x');
                } else {
                    let j = rng.below(b.len());
                    b[j] = b[j].wrapping_add(1);
                }
                format!("{here} bytes changed to {:?}", String::from_utf8_lossy(b))
            }
            Val::Packed(v) => {
                v.clear();
                format!("{here} emptied")
            }
            Val::Msg(m) => {
                m.clear();
                format!("{here} emptied")
            }
        },
    }
}

// ---------------------------------------------------------------------------------------------
// the pipeline under test

fn small_limits() -> PlanLimits {
    PlanLimits::none()
        .max_layers(1000, "--max-layers")
        .max_tasks(100_000, "--max-tasks")
        .max_chunk_bytes(64 << 20, "--memory-limit")
}

/// How far inputs got: [decoded, validated, within limits, expanded, cases].
static REACHED: [AtomicUsize; 5] = [const { AtomicUsize::new(0) }; 5];

fn reached(stage: usize) {
    REACHED[stage].fetch_add(1, Ordering::Relaxed);
}

/// Decodes, validates, checks and expands `bytes`; fails with `what` on a panic or a peak of live
/// memory above the limit.
fn pipeline(bytes: &[u8], what: &str) -> Result<(), TestCaseError> {
    set_current(what);
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    reached(4);
    let run = catch_unwind(AssertUnwindSafe(|| {
        let Ok(msg) = pb::Graph::decode(bytes) else {
            return;
        };
        reached(0);
        let Ok(g) = graph_from_proto(msg) else {
            return;
        };
        reached(1);
        if limits::check(&g, &small_limits()).is_err() {
            return;
        }
        reached(2);
        if TaskGraph::expand_limited(g, 100_000, "--max-tasks").is_ok() {
            reached(3);
        }
    }));
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    if let Err(p) = run {
        let text = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        return Err(TestCaseError::fail(format!("panicked ({text}) on {what}")));
    }
    prop_assert!(peak < PEAK_LIMIT, "peak of {peak} bytes live on {what}");
    Ok(())
}

const WALL: Duration = Duration::from_secs(20);

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        max_shrink_iters: 64,
        ..ProptestConfig::default()
    }
}

#[test]
fn real_graphs_still_pass_unmutated() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    for (i, bytes) in graphs().iter().enumerate() {
        let fields = parse_msg(bytes, 0).expect("a real graph parses");
        let mut again = Vec::new();
        encode(&fields, &mut again);
        assert_eq!(&again, bytes, "graph {i} re-encodes to the same bytes");
        let g = graph_from_proto(pb::Graph::decode(bytes.as_slice()).unwrap()).unwrap();
        limits::check(&g, &small_limits()).unwrap();
        TaskGraph::expand_limited(g, 100_000, "--max-tasks").unwrap();
    }
}

#[test]
fn mutated_graphs_never_panic_or_over_allocate() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let graphs = graphs();
    let parsed: Vec<Vec<Field>> = graphs.iter().map(|b| parse_msg(b, 0).unwrap()).collect();
    let start = Instant::now();
    proptest!(config(30_000), |(which in 0..parsed.len(), seed in any::<u64>(), n in 1usize..4)| {
        if start.elapsed() > WALL {
            return Ok(());
        }
        let mut rng = Rng(seed);
        let mut fields = parsed[which].clone();
        let mut did = Vec::new();
        for _ in 0..n {
            let mut target = rng.below(count(&fields));
            if let Some(d) = mutate_at(&mut fields, &mut target, &mut rng, "") {
                did.push(d);
            }
        }
        let mut bytes = Vec::new();
        encode(&fields, &mut bytes);
        pipeline(&bytes, &format!("graph {which}: {}", did.join("; ")))?;
    });
    report_and_check_reach();
}

/// Prints how far the inputs got and fails if too few reached expansion for the test to mean much.
fn report_and_check_reach() {
    let r: Vec<usize> = REACHED
        .iter()
        .map(|a| a.swap(0, Ordering::Relaxed))
        .collect();
    eprintln!(
        "{} inputs: {} decoded, {} validated, {} within limits, {} expanded",
        r[4], r[0], r[1], r[2], r[3]
    );
    assert!(r[4] >= 200, "only {} inputs ran", r[4]);
    assert!(
        r[3] >= r[4] / 50,
        "only {} of {} inputs reached expansion",
        r[3],
        r[4]
    );
}

#[test]
fn flipped_bytes_never_panic_or_over_allocate() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let graphs = graphs();
    let start = Instant::now();
    proptest!(config(30_000), |(which in 0..graphs.len(), seed in any::<u64>(), n in 1usize..6)| {
        if start.elapsed() > WALL {
            return Ok(());
        }
        let mut rng = Rng(seed);
        let mut bytes = graphs[which].clone();
        let mut did = Vec::new();
        for _ in 0..n {
            let j = rng.below(bytes.len());
            if rng.below(8) == 0 {
                bytes.truncate(j);
                did.push(format!("truncated at {j}"));
            } else if !bytes.is_empty() {
                let bit = 1u8 << rng.below(8);
                bytes[j] ^= bit;
                did.push(format!("byte {j} ^= {bit:#04x}"));
            }
        }
        pipeline(&bytes, &format!("graph {which}: {}", did.join("; ")))?;
    });
    report_and_check_reach();
}
