//! FFT lane kernels for [`FftOp`]: each lane along the op's axis is copied into a contiguous
//! buffer (cut or zero-padded to the transform's input length), transformed in place by a
//! `rustfft` plan (complex) or a `realfft` plan (real input or output), scaled by the norm, and
//! written to the output lane. One plan and one scratch buffer serve every lane of a block.

use ndarray::{ArrayD, Axis, IxDyn};
use num_complex::Complex64;
use realfft::RealFftPlanner;
use rustfft::FftPlanner;

use crate::data::ArrayData;
use crate::error::{Error, Result};
use crate::meta::DType;
use crate::ops::fft::{FftKind, FftOp};

/// The output block of `op` for the input block `x`.
pub fn transform(op: &FftOp, x: &ArrayData) -> Result<ArrayData> {
    if op.axis >= x.shape().len() {
        return Err(Error::ShapeMismatch {
            op: op.name(),
            reason: format!("block of shape {:?} has no axis {}", x.shape(), op.axis),
        });
    }
    let mut shape = x.shape().to_vec();
    shape[op.axis] = op.out_len();
    let scale = op.norm.scale(op.kind, op.n);
    Ok(match op.kind {
        FftKind::Forward | FftKind::Inverse => {
            let input = complex_view(x);
            ArrayData::C128(complex_lanes(op, input.as_ref(), &shape, scale))
        }
        FftKind::RealForward => {
            if x.dtype() == DType::C128 {
                return Err(Error::UnsupportedDType {
                    op: op.name(),
                    dtype: DType::C128,
                });
            }
            let cast;
            let input = match x {
                ArrayData::F64(a) => a,
                other => {
                    cast = other.cast(DType::F64).into_typed::<f64>()?;
                    &cast
                }
            };
            ArrayData::C128(real_forward_lanes(op, input, &shape, scale))
        }
        FftKind::RealInverse => {
            let ArrayData::C128(input) = x else {
                return Err(Error::UnsupportedDType {
                    op: op.name(),
                    dtype: x.dtype(),
                });
            };
            ArrayData::F64(real_inverse_lanes(op, input, &shape, scale))
        }
    })
}

/// The block as complex128, borrowed when it already is.
fn complex_view(x: &ArrayData) -> std::borrow::Cow<'_, ArrayD<Complex64>> {
    match x {
        ArrayData::C128(a) => std::borrow::Cow::Borrowed(a),
        other => std::borrow::Cow::Owned(
            other
                .cast(DType::C128)
                .into_typed::<Complex64>()
                .expect("cast gives complex128"),
        ),
    }
}

/// Copies `lane` into `buf`, cutting it or padding it with zeros to `buf.len()`.
fn load<T: Copy + Default>(lane: ndarray::ArrayView1<'_, T>, buf: &mut [T]) {
    let k = lane.len().min(buf.len());
    for (b, &v) in buf.iter_mut().zip(lane.iter()) {
        *b = v;
    }
    buf[k..].fill(T::default());
}

fn complex_lanes(
    op: &FftOp,
    x: &ArrayD<Complex64>,
    shape: &[usize],
    scale: f64,
) -> ArrayD<Complex64> {
    let axis = Axis(op.axis);
    let mut out = ArrayD::from_elem(IxDyn(shape), Complex64::new(0.0, 0.0));
    let mut planner = FftPlanner::<f64>::new();
    let plan = if op.kind.is_inverse() {
        planner.plan_fft_inverse(op.n)
    } else {
        planner.plan_fft_forward(op.n)
    };
    let mut scratch = vec![Complex64::new(0.0, 0.0); plan.get_inplace_scratch_len()];
    let mut buf = vec![Complex64::new(0.0, 0.0); op.n];
    for (lane, mut o) in x.lanes(axis).into_iter().zip(out.lanes_mut(axis)) {
        load(lane, &mut buf);
        plan.process_with_scratch(&mut buf, &mut scratch);
        for (o, &v) in o.iter_mut().zip(&buf) {
            *o = if scale == 1.0 { v } else { v * scale };
        }
    }
    out
}

fn real_forward_lanes(
    op: &FftOp,
    x: &ArrayD<f64>,
    shape: &[usize],
    scale: f64,
) -> ArrayD<Complex64> {
    let axis = Axis(op.axis);
    let mut out = ArrayD::from_elem(IxDyn(shape), Complex64::new(0.0, 0.0));
    let plan = RealFftPlanner::<f64>::new().plan_fft_forward(op.n);
    let mut input = plan.make_input_vec();
    let mut spectrum = plan.make_output_vec();
    let mut scratch = plan.make_scratch_vec();
    for (lane, mut o) in x.lanes(axis).into_iter().zip(out.lanes_mut(axis)) {
        load(lane, &mut input);
        plan.process_with_scratch(&mut input, &mut spectrum, &mut scratch)
            .expect("buffers made by the plan have its lengths");
        for (o, &v) in o.iter_mut().zip(&spectrum) {
            *o = if scale == 1.0 { v } else { v * scale };
        }
    }
    out
}

fn real_inverse_lanes(
    op: &FftOp,
    x: &ArrayD<Complex64>,
    shape: &[usize],
    scale: f64,
) -> ArrayD<f64> {
    let axis = Axis(op.axis);
    let mut out = ArrayD::zeros(IxDyn(shape));
    let plan = RealFftPlanner::<f64>::new().plan_fft_inverse(op.n);
    let mut spectrum = plan.make_input_vec();
    let mut signal = plan.make_output_vec();
    let mut scratch = plan.make_scratch_vec();
    let last = spectrum.len() - 1;
    for (lane, mut o) in x.lanes(axis).into_iter().zip(out.lanes_mut(axis)) {
        load(lane, &mut spectrum);
        // numpy (pocketfft) ignores the imaginary parts of the zero frequency and, for an even
        // length, of the Nyquist one; realfft refuses them, so they are dropped here.
        spectrum[0].im = 0.0;
        if op.n.is_multiple_of(2) {
            spectrum[last].im = 0.0;
        }
        plan.process_with_scratch(&mut spectrum, &mut signal, &mut scratch)
            .expect("buffers made by the plan have its lengths, edge parts real");
        for (o, &v) in o.iter_mut().zip(&signal) {
            *o = v * scale;
        }
    }
    out
}
