//! Run-time selection of vector code. Hot loops are written once as `#[inline(always)]` bodies with a
//! fixed lane structure; [`multiversion!`] compiles each body again inside functions with AVX-512 or
//! AVX2 enabled and calls the best one the CPU supports. The lane structure — not the vector width —
//! decides the order of floating-point operations, so every path gives the same bits and results do not
//! depend on which machine computed them.

use std::sync::atomic::{AtomicU8, Ordering};

/// What the CPU supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Portable,
    Avx2,
    Avx512,
}

/// The best level of this CPU, detected once.
pub fn level() -> Level {
    static CACHE: AtomicU8 = AtomicU8::new(0);
    match CACHE.load(Ordering::Relaxed) {
        1 => Level::Portable,
        2 => Level::Avx2,
        3 => Level::Avx512,
        _ => {
            let l = detect();
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

/// Defines `pub fn $name($args) -> $ret` (or without a result) that runs `$body` compiled for the
/// best available level.
macro_rules! multiversion {
    ($(#[$doc:meta])* pub fn $name:ident($($arg:ident: $ty:ty),*) = $body:path;) => {
        $crate::kernels::simd::multiversion! {
            $(#[$doc])* pub fn $name($($arg: $ty),*) -> () = $body;
        }
    };
    ($(#[$doc:meta])* pub fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty = $body:path;) => {
        $(#[$doc])*
        pub fn $name($($arg: $ty),*) -> $ret {
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
const LANES: usize = 32;

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
    let mut acc = [0.0f64; LANES];
    let chunks = x.chunks_exact(LANES);
    let rem = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            acc[l] += c[l];
        }
    }
    let mut s = fold_lanes(&acc);
    for &v in rem {
        s += v;
    }
    s
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
}
