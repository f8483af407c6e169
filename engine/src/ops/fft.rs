//! [`FftOp`]: a discrete Fourier transform along one axis that is one chunk (numpy's `fft`,
//! `ifft`, `rfft`, `irfft`; the n-d transforms of `tessera::fft` are chains of it, one axis at a
//! time). Each block transforms its own lanes, so the op reads exactly the block at its own index;
//! the axis must be whole in every block, as in dask, which the metadata rule checks.
//!
//! The rule owns the numpy typing: a complex transform (`fft`/`ifft`) of real input computes in
//! complex128, `rfft` reads real input and gives `n/2 + 1` complex values, `irfft` reads complex
//! and gives `n` float64 values. The lane kernels are in `kernels::fft`.

use std::sync::Arc;

use crate::data::ChunkValue;
use crate::error::{Error, Result};
use crate::meta::{Chunks, DType};
use crate::ops::{Derived, Holds, InputMeta, RuleResult, one_input, whole_axis};

/// Which transform a layer computes along its axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FftKind {
    /// Complex to complex, forward (numpy's `fft`).
    Forward,
    /// Complex to complex, inverse (numpy's `ifft`).
    Inverse,
    /// Real to the non-negative frequencies, forward (numpy's `rfft`).
    RealForward,
    /// Non-negative frequencies to real, inverse (numpy's `irfft`).
    RealInverse,
}

impl FftKind {
    /// Every kind.
    pub const ALL: &[FftKind] = &[
        FftKind::Forward,
        FftKind::Inverse,
        FftKind::RealForward,
        FftKind::RealInverse,
    ];

    /// numpy's name for the one-axis transform.
    pub fn name(self) -> &'static str {
        match self {
            FftKind::Forward => "fft",
            FftKind::Inverse => "ifft",
            FftKind::RealForward => "rfft",
            FftKind::RealInverse => "irfft",
        }
    }

    /// Whether the transform runs from frequencies back to samples.
    pub fn is_inverse(self) -> bool {
        matches!(self, FftKind::Inverse | FftKind::RealInverse)
    }

    /// Stable code on the wire.
    pub fn code(self) -> i32 {
        match self {
            FftKind::Forward => 0,
            FftKind::Inverse => 1,
            FftKind::RealForward => 2,
            FftKind::RealInverse => 3,
        }
    }

    /// The kind with wire code `code`, if any.
    pub fn from_code(code: i32) -> Option<Self> {
        Some(match code {
            0 => FftKind::Forward,
            1 => FftKind::Inverse,
            2 => FftKind::RealForward,
            3 => FftKind::RealInverse,
            _ => return None,
        })
    }
}

/// numpy's `norm` argument: which direction is scaled, and by what.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum FftNorm {
    /// No scaling forward, `1/n` inverse (numpy's default).
    #[default]
    Backward,
    /// `1/sqrt(n)` both ways.
    Ortho,
    /// `1/n` forward, no scaling inverse.
    Forward,
}

impl FftNorm {
    /// numpy's spelling.
    pub fn name(self) -> &'static str {
        match self {
            FftNorm::Backward => "backward",
            FftNorm::Ortho => "ortho",
            FftNorm::Forward => "forward",
        }
    }

    /// Parses numpy's spelling (`None` is "backward").
    pub fn parse(s: Option<&str>) -> Result<Self> {
        match s {
            None | Some("backward") => Ok(FftNorm::Backward),
            Some("ortho") => Ok(FftNorm::Ortho),
            Some("forward") => Ok(FftNorm::Forward),
            Some(other) => Err(Error::InvalidArgument {
                op: "fft",
                reason: format!(
                    "norm {other:?} is not one of \"backward\", \"ortho\", \"forward\""
                ),
            }),
        }
    }

    /// Stable code on the wire.
    pub fn code(self) -> i32 {
        match self {
            FftNorm::Backward => 0,
            FftNorm::Ortho => 1,
            FftNorm::Forward => 2,
        }
    }

    /// The norm with wire code `code`, if any.
    pub fn from_code(code: i32) -> Option<Self> {
        Some(match code {
            0 => FftNorm::Backward,
            1 => FftNorm::Ortho,
            2 => FftNorm::Forward,
            _ => return None,
        })
    }

    /// The factor a transform of `n` points in the direction of `kind` multiplies by.
    pub fn scale(self, kind: FftKind, n: usize) -> f64 {
        let n = n as f64;
        match (self, kind.is_inverse()) {
            (FftNorm::Ortho, _) => 1.0 / n.sqrt(),
            (FftNorm::Backward, true) | (FftNorm::Forward, false) => 1.0 / n,
            (FftNorm::Backward, false) | (FftNorm::Forward, true) => 1.0,
        }
    }
}

/// A one-axis transform of `n` points: the input lane is cut or zero-padded to `n` (for `irfft`,
/// to `n/2 + 1` frequencies) first, as numpy's `n` argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FftOp {
    pub kind: FftKind,
    pub axis: usize,
    /// Points of the transform (numpy's `n`): for `irfft`, the length of the real output.
    pub n: usize,
    pub norm: FftNorm,
}

/// The largest transform length, so that a message cannot ask a worker to allocate without bound
/// before the memory estimate sees the output (2^40 points, far beyond any one chunk).
pub const FFT_MAX_POINTS: usize = 1 << 40;

impl FftOp {
    /// The op's name (numpy's).
    pub fn name(&self) -> &'static str {
        self.kind.name()
    }

    /// Length of the output along the axis.
    pub fn out_len(&self) -> usize {
        match self.kind {
            FftKind::RealForward => self.n / 2 + 1,
            _ => self.n,
        }
    }

    /// Length of the input lane the kernel reads (the rest is cut, a shortfall zero-padded).
    pub fn in_len(&self) -> usize {
        match self.kind {
            FftKind::RealInverse => self.n / 2 + 1,
            _ => self.n,
        }
    }

    /// The dtype the output has: complex128, or float64 for `irfft`.
    pub fn out_dtype(&self) -> DType {
        match self.kind {
            FftKind::RealInverse => DType::F64,
            _ => DType::C128,
        }
    }

    /// The input's chunks with the axis (one chunk) replaced by the output length.
    pub(crate) fn output_meta(&self, inputs: &[InputMeta<'_>]) -> RuleResult<Derived> {
        let input = one_input(inputs, self.name())?;
        if input.holds != Holds::Array {
            return Err(format!("its input {} holds no array chunks", input.id));
        }
        let m = input.meta;
        whole_axis(input, self.axis, "transforms")?;
        if self.n == 0 || self.n > FFT_MAX_POINTS {
            return Err(format!(
                "a transform of {} points is invalid (1 to {FFT_MAX_POINTS})",
                self.n
            ));
        }
        match (self.kind, m.dtype) {
            (FftKind::RealForward, DType::C128) => {
                return Err(format!(
                    "rfft reads real input, but its input {} is complex128",
                    input.id
                ));
            }
            (FftKind::RealInverse, d) if d != DType::C128 => {
                return Err(format!(
                    "irfft reads complex128 input, but its input {} is {d}",
                    input.id
                ));
            }
            _ => {}
        }
        let mut sizes = m.chunks.sizes().to_vec();
        sizes[self.axis] = vec![self.out_len()];
        Ok(Derived::new(
            Chunks::from_sizes(sizes),
            self.out_dtype(),
            "replacing the transformed axis by the output length",
            match self.kind {
                FftKind::RealInverse => "float64, the real signal",
                _ => "complex128, the spectrum",
            },
        ))
    }

    /// Computes the block: every lane along the axis transformed.
    pub(crate) fn run(&self, deps: &[Arc<ChunkValue>]) -> Result<ChunkValue> {
        let x = deps
            .first()
            .ok_or_else(|| Error::InvalidArgument {
                op: self.name(),
                reason: "reads one input block".into(),
            })?
            .as_array()?;
        crate::kernels::fft::transform(self, x).map(ChunkValue::Array)
    }

    /// Feeds the op's parameters to a token.
    pub(crate) fn tokenize(&self, t: &mut crate::graph::Tokenizer) {
        t.u64(self.kind.code() as u64);
        t.u64(self.axis as u64);
        t.u64(self.n as u64);
        t.u64(self.norm.code() as u64);
    }
}
