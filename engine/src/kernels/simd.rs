//! Run-time selection of vector code. Hot loops are written once as `#[inline(always)]` bodies with a
//! fixed lane structure; `multiversion!` compiles each body again inside functions with AVX-512 or
//! AVX2 enabled and calls the best one the CPU supports. The lane structure — not the vector width —
//! decides the order of floating-point operations, so every path gives the same bits and results do not
//! depend on which machine computed them.

use std::sync::atomic::{AtomicU8, Ordering};

/// The environment variable that caps the vector level: `portable`, `avx2` or `avx512` (any case).
/// The level used is the lower of this and what the CPU has, so a benchmark can time the AVX2 or the
/// portable path on an AVX-512 machine; results do not change, since every level gives the same
/// bits. Unset (the default) means the best level of the CPU. A value that is none of these is
/// reported once on stderr and ignored: it must not stop a worker that inherited it.
pub const SIMD_ENV: &str = "TESSERA_SIMD";

/// Vector instruction levels, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// The baseline target (SSE2 on x86_64): no run-time extension.
    Portable,
    /// AVX2 and FMA, with VAES on 256-bit registers (or AES-NI where the CPU lacks VAES) for the
    /// random numbers.
    Avx2,
    /// AVX-512 F/DQ/VL (and VAES where the CPU has it).
    Avx512,
}

impl Level {
    /// The level of a [`SIMD_ENV`] value, or `None` when it names none.
    pub fn parse(name: &str) -> Option<Level> {
        match name.trim().to_ascii_lowercase().as_str() {
            "portable" => Some(Level::Portable),
            "avx2" => Some(Level::Avx2),
            "avx512" => Some(Level::Avx512),
            _ => None,
        }
    }
}

/// The level used: the best one of this CPU, capped by [`SIMD_ENV`]; decided once per process.
pub fn level() -> Level {
    static CACHE: AtomicU8 = AtomicU8::new(0);
    match CACHE.load(Ordering::Relaxed) {
        1 => Level::Portable,
        2 => Level::Avx2,
        3 => Level::Avx512,
        _ => {
            let cap = std::env::var(SIMD_ENV).ok();
            let l = capped(detect(), cap.as_deref());
            CACHE.store(
                match l {
                    Level::Portable => 1,
                    Level::Avx2 => 2,
                    Level::Avx512 => 3,
                },
                Ordering::Relaxed,
            );
            l
        }
    }
}

/// `cpu` capped by the [`SIMD_ENV`] value `cap`: never above what the CPU has.
fn capped(cpu: Level, cap: Option<&str>) -> Level {
    match cap.map(|c| (c, Level::parse(c))) {
        None => cpu,
        Some((_, Some(cap))) => cpu.min(cap),
        Some((bad, None)) => {
            eprintln!(
                "tessera: ignoring {SIMD_ENV}={bad:?}: expected portable, avx2 or avx512; using {cpu:?}"
            );
            cpu
        }
    }
}

/// The best level of this CPU.
#[cfg(target_arch = "x86_64")]
fn detect() -> Level {
    if is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512dq")
        && is_x86_feature_detected!("avx512vl")
    {
        Level::Avx512
    } else if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        Level::Avx2
    } else {
        Level::Portable
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> Level {
    Level::Portable
}

/// Defines `$vis fn $name($args) -> $ret` (or without a result; any visibility) that runs `$body`
/// compiled for the best available level.
macro_rules! multiversion {
    ($(#[$doc:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),*) = $body:path;) => {
        $crate::kernels::simd::multiversion! {
            $(#[$doc])* $vis fn $name($($arg: $ty),*) -> () = $body;
        }
    };
    ($(#[$doc:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty = $body:path;) => {
        $(#[$doc])*
        $vis fn $name($($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512dq,avx512vl")]
                fn avx512($($arg: $ty),*) -> $ret {
                    $body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) -> $ret {
                    $body($($arg),*)
                }
                match $crate::kernels::simd::level() {
                    // SAFETY: level() reported these features on this CPU.
                    $crate::kernels::simd::Level::Avx512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: as above.
                    $crate::kernels::simd::Level::Avx2 => return unsafe { avx2($($arg),*) },
                    $crate::kernels::simd::Level::Portable => {}
                }
            }
            $body($($arg),*)
        }
    };
}
#[allow(unused_imports)]
pub(crate) use multiversion;

/// Independent accumulators in the sums: enough to hide the latency of vector adds.
pub(crate) const LANES: usize = 32;

#[inline(always)]
fn add_lane_groups_body(acc: &mut [f64; LANES], x: &[f64]) {
    debug_assert!(x.len().is_multiple_of(LANES));
    for c in x.chunks_exact(LANES) {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
}

multiversion! {
    /// `acc[l] += x[k·LANES + l]` for every whole group k: [`LaneSum::add_groups_apart`].
    fn add_lane_groups(acc: &mut [f64; LANES], x: &[f64]) = add_lane_groups_body;
}

/// The summation order of [`sum_f64`] fed piecewise, for kernels that produce values in pieces and
/// must give the same bits as summing them all at once (the fused random sums): whole groups of
/// [`LANES`] go to the lane accumulators, then [`LaneSum::finish`] folds them and adds the last
/// fewer-than-`LANES` values in order.
pub(crate) struct LaneSum([f64; LANES]);

impl LaneSum {
    #[inline(always)]
    pub(crate) fn new() -> Self {
        Self([0.0; LANES])
    }

    /// Adds `x`, whose length must be a multiple of [`LANES`].
    #[inline(always)]
    pub(crate) fn add_groups(&mut self, x: &[f64]) {
        add_lane_groups_body(&mut self.0, x);
    }

    /// [`LaneSum::add_groups`] as a call of its own, compiled for the best vector level: for
    /// callers whose loops are large (the random kernels), where the inlined loop's 32
    /// accumulators were kept on the stack and added two at a time.
    pub(crate) fn add_groups_apart(&mut self, x: &[f64]) {
        add_lane_groups(&mut self.0, x);
    }

    /// The sum of everything added and then of `rest` (fewer than [`LANES`] values).
    #[inline(always)]
    pub(crate) fn finish(&self, rest: &[f64]) -> f64 {
        debug_assert!(rest.len() < LANES);
        let mut s = fold_lanes(&self.0);
        for &v in rest {
            s += v;
        }
        s
    }
}

#[inline(always)]
fn fold_lanes(acc: &[f64; LANES]) -> f64 {
    // A fixed pairwise tree over the lanes.
    let mut v = *acc;
    let mut width = LANES / 2;
    while width > 0 {
        for i in 0..width {
            v[i] += v[i + width];
        }
        width /= 2;
    }
    v[0]
}

#[inline(always)]
fn sum_body(x: &[f64]) -> f64 {
    let whole = x.len() - x.len() % LANES;
    let mut acc = LaneSum::new();
    acc.add_groups(&x[..whole]);
    acc.finish(&x[whole..])
}

#[inline(always)]
fn sum_sq_dev_body(x: &[f64], mean: f64) -> f64 {
    let mut acc = [0.0f64; LANES];
    let chunks = x.chunks_exact(LANES);
    let rem = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            let d = c[l] - mean;
            acc[l] += d * d;
        }
    }
    let mut s = fold_lanes(&acc);
    for &v in rem {
        let d = v - mean;
        s += d * d;
    }
    s
}

multiversion! {
    /// Sum of a slice; the same bits on every CPU.
    pub fn sum_f64(x: &[f64]) -> f64 = sum_body;
}

multiversion! {
    /// Sum of squared deviations from `mean`; the same bits on every CPU.
    pub fn sum_sq_dev_f64(x: &[f64], mean: f64) -> f64 = sum_sq_dev_body;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_gives_the_same_sum() {
        let x: Vec<f64> = (0..1037)
            .map(|i| ((i * 7919) % 1000) as f64 * 1e-3 + 1e6)
            .collect();
        let portable = sum_body(&x);
        assert_eq!(sum_f64(&x).to_bits(), portable.to_bits());
        let dev = sum_sq_dev_body(&x, 1e6);
        assert_eq!(sum_sq_dev_f64(&x, 1e6).to_bits(), dev.to_bits());
        let plain: f64 = x.iter().sum();
        assert!((portable - plain).abs() / plain < 1e-12);
    }

    #[test]
    fn the_override_caps_the_level_and_never_raises_it() {
        assert_eq!(Level::parse(" AVX2 "), Some(Level::Avx2));
        assert_eq!(Level::parse("avx512"), Some(Level::Avx512));
        assert_eq!(Level::parse("portable"), Some(Level::Portable));
        assert_eq!(Level::parse("sse9"), None);
        assert_eq!(capped(Level::Avx512, None), Level::Avx512);
        assert_eq!(capped(Level::Avx512, Some("avx2")), Level::Avx2);
        assert_eq!(capped(Level::Avx512, Some("portable")), Level::Portable);
        // Asking for more than the CPU has gives what it has; nonsense is ignored.
        assert_eq!(capped(Level::Avx2, Some("avx512")), Level::Avx2);
        assert_eq!(capped(Level::Portable, Some("avx2")), Level::Portable);
        assert_eq!(capped(Level::Avx2, Some("fast")), Level::Avx2);
        assert!(level() <= detect());
    }
}
