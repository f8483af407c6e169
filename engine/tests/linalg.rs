//! `tessera::linalg` the way a user drives it, against plain ndarray oracles written here: products
//! (`tensordot`, `einsum`, 1-d and batched `matmul`, `outer`, `vdot`, `vecdot`, `trace`, `cross`,
//! `matrix_transpose`) element by element, and factorizations by their defining identities
//! (Q·R = A with QᵀQ = I, U·diag(s)·Vᵀ = A, L·Lᵀ = A, A·x = b, A·V = V·diag(w)), on regular,
//! irregular and ragged chunkings, in float64 and float32; and the errors for what does not apply.

mod common;

use common::*;
use ndarray::{Array2, ArrayD, Axis, Ix2, IxDyn, arr2};
use tessera::linalg::{self, NormOrd};
use tessera::{Array, ChunkSpec, DType, Element, from_array};

// ---------------------------------------------------------------------------------------------
// oracles

/// numpy's `tensordot` in plain ndarray: the operands permuted to (free, summed) and (summed,
/// free), reshaped to matrices and multiplied.
fn oracle_tensordot(a: &ArrayD<f64>, b: &ArrayD<f64>, aa: &[usize], ba: &[usize]) -> ArrayD<f64> {
    let afree: Vec<usize> = (0..a.ndim()).filter(|i| !aa.contains(i)).collect();
    let bfree: Vec<usize> = (0..b.ndim()).filter(|i| !ba.contains(i)).collect();
    let ap: Vec<usize> = afree.iter().chain(aa).copied().collect();
    let bp: Vec<usize> = ba.iter().chain(&bfree).copied().collect();
    let m: usize = afree.iter().map(|&i| a.shape()[i]).product();
    let k: usize = aa.iter().map(|&i| a.shape()[i]).product();
    let n: usize = bfree.iter().map(|&i| b.shape()[i]).product();
    let a2 = a
        .clone()
        .permuted_axes(ap)
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order((m, k))
        .unwrap();
    let b2 = b
        .clone()
        .permuted_axes(bp)
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order((k, n))
        .unwrap();
    let shape: Vec<usize> = afree
        .iter()
        .map(|&i| a.shape()[i])
        .chain(bfree.iter().map(|&i| b.shape()[i]))
        .collect();
    a2.dot(&b2).into_shape_with_order(IxDyn(&shape)).unwrap()
}

fn m2(a: &ArrayD<f64>) -> Array2<f64> {
    a.clone().into_dimensionality::<Ix2>().unwrap()
}

fn f64_of(a: &Array) -> ArrayD<f64> {
    data_f64(&a.compute_dyn().unwrap())
}

/// `|x - y| <= tol * (1 + |y|)` everywhere.
#[track_caller]
fn assert_close(x: &ArrayD<f64>, y: &ArrayD<f64>, tol: f64, what: &str) {
    assert_eq!(x.shape(), y.shape(), "{what}: shape");
    for (i, (p, q)) in x.iter().zip(y.iter()).enumerate() {
        assert!(
            (p - q).abs() <= tol * (1.0 + q.abs()),
            "{what}: flat index {i}: {p} vs {q} (tol {tol})"
        );
    }
}

fn eye(n: usize) -> ArrayD<f64> {
    Array2::<f64>::eye(n).into_dyn()
}

fn chunked<T: Element>(data: &ArrayD<T>, spec: ChunkSpec) -> Array {
    from_array(data.clone(), spec).unwrap()
}

// ---------------------------------------------------------------------------------------------
// products

#[test]
fn tensordot_with_an_int_and_with_axis_pairs_matches_the_reshape_oracle() {
    let a = sample::<f64>(&[6, 5, 4], 1);
    let b = sample::<f64>(&[4, 5, 3], 2);
    for (name, ca) in chunkings(a.shape()) {
        for (_, cb) in chunkings(b.shape()).into_iter().take(3) {
            in_context(name, || {
                let (x, y) = (chunked(&a, ca.clone()), chunked(&b, cb.clone()));
                check(
                    &linalg::tensordot(&x, &y, 1).unwrap(),
                    &oracle_tensordot(&a, &b, &[2], &[0]),
                );
                check(
                    &linalg::tensordot(&x, &y, ([1, 2], [1, 0])).unwrap(),
                    &oracle_tensordot(&a, &b, &[1, 2], &[1, 0]),
                );
                check(
                    &linalg::tensordot(&x, &y, ([-1], [0])).unwrap(),
                    &oracle_tensordot(&a, &b, &[2], &[0]),
                );
                // axes = 0 is the outer product.
                check(
                    &linalg::tensordot(&x, &y, 0).unwrap(),
                    &oracle_tensordot(&a, &b, &[], &[]),
                );
            });
        }
    }
    let x = chunked(&a, ChunkSpec::Block(vec![3, 5, 4]));
    let err = linalg::tensordot(&x, &x, ([0], [1]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("differ in length"), "{err}");
}

#[test]
fn einsum_covers_products_traces_diagonals_transposes_and_sums() {
    let a = sample::<f64>(&[7, 5], 3);
    let b = sample::<f64>(&[5, 6], 4);
    let sq = sample::<f64>(&[6, 6], 5);
    let batch_a = sample::<f64>(&[3, 4, 5], 6);
    let batch_b = sample::<f64>(&[3, 5, 2], 7);
    let v = sample::<f64>(&[7], 8);
    for (name, spec) in [
        ("regular", ChunkSpec::Block(vec![2, 2, 2])),
        ("irregular", ChunkSpec::Block(vec![3, 4, 3])),
    ] {
        in_context(name, || {
            let c = |d: &ArrayD<f64>| {
                let s = match &spec {
                    ChunkSpec::Block(b) => ChunkSpec::Block(b[..d.ndim()].to_vec()),
                    other => other.clone(),
                };
                chunked(d, s)
            };
            let (x, y, s, ba, bb, w) = (c(&a), c(&b), c(&sq), c(&batch_a), c(&batch_b), c(&v));
            check(
                &linalg::einsum("ij,jk->ik", &[&x, &y]).unwrap(),
                &m2(&a).dot(&m2(&b)).into_dyn(),
            );
            check(
                &linalg::einsum("ij,jk", &[&x, &y]).unwrap(),
                &m2(&a).dot(&m2(&b)).into_dyn(),
            );
            check(
                &linalg::einsum("jk,ij->ki", &[&y, &x]).unwrap(),
                &m2(&a).dot(&m2(&b)).t().to_owned().into_dyn(),
            );
            let mut bmm = ArrayD::<f64>::zeros(IxDyn(&[3, 4, 2]));
            for i in 0..3 {
                let p = m2(&batch_a.index_axis(Axis(0), i).to_owned())
                    .dot(&m2(&batch_b.index_axis(Axis(0), i).to_owned()));
                bmm.index_axis_mut(Axis(0), i).assign(&p.into_dyn());
            }
            check(&linalg::einsum("bij,bjk->bik", &[&ba, &bb]).unwrap(), &bmm);
            let trace: f64 = (0..6).map(|i| sq[[i, i]]).sum();
            check(
                &linalg::einsum("ii", &[&s]).unwrap(),
                &ArrayD::from_elem(IxDyn(&[]), trace),
            );
            check(
                &linalg::einsum("ii->i", &[&s]).unwrap(),
                &ArrayD::from_shape_fn(IxDyn(&[6]), |i| sq[[i[0], i[0]]]),
            );
            check(
                &linalg::einsum("i,j->ij", &[&w, &w]).unwrap(),
                &ArrayD::from_shape_fn(IxDyn(&[7, 7]), |i| v[[i[0]]] * v[[i[1]]]),
            );
            check(&linalg::einsum("ij->ji", &[&x]).unwrap(), &a.t().to_owned());
            check(
                &linalg::einsum("ij->j", &[&x]).unwrap(),
                &a.sum_axis(Axis(0)),
            );
            check(
                &linalg::einsum("ijk->", &[&ba]).unwrap(),
                &ArrayD::from_elem(IxDyn(&[]), batch_a.sum()),
            );
            check(
                &linalg::einsum("ij,ij->i", &[&x, &x]).unwrap(),
                &(&a * &a).sum_axis(Axis(1)),
            );
        });
    }
    let x = chunked(&a, ChunkSpec::Block(vec![3, 3]));
    for (subs, what) in [
        ("ij,jk->ik", "names 2 operands, 1 were given"),
        ("i...j->ij", "ellipses"),
        ("ij->iz", "appears in no operand"),
        ("ii", "diagonal of a square 2-d operand"),
    ] {
        let err = linalg::einsum(subs, &[&x]).unwrap_err().to_string();
        assert!(err.contains(what), "{subs}: {err}");
    }
}

#[test]
fn matmul_takes_1d_and_batched_operands_with_numpy_broadcasting() {
    let loop_matmul = |a: &ArrayD<f64>, b: &ArrayD<f64>| -> ArrayD<f64> {
        // Batch (2, 1) broadcast with (3,): both to (2, 3) of 4×5 @ 5×2.
        ArrayD::from_shape_fn(IxDyn(&[2, 3, 4, 2]), |ix| {
            (0..5)
                .map(|k| a[[ix[0], 0, ix[2], k]] * b[[ix[1], k, ix[3]]])
                .sum()
        })
    };
    let a = sample::<f64>(&[2, 1, 4, 5], 10);
    let b = sample::<f64>(&[3, 5, 2], 11);
    let v = sample::<f64>(&[5], 12);
    let m = sample::<f64>(&[5, 4], 13);
    for (name, ca) in chunkings(a.shape()).into_iter().take(3) {
        in_context(name, || {
            let x = chunked(&a, ca.clone());
            let y = chunked(&b, ChunkSpec::Block(vec![2, 3, 1]));
            check(&linalg::matmul(&x, &y).unwrap(), &loop_matmul(&a, &b));
            let w = chunked(&v, ChunkSpec::Block(vec![2]));
            let mm = chunked(&m, ChunkSpec::Block(vec![3, 3]));
            // 1-d @ 2-d, 2-d @ 1-d, 1-d @ 1-d, n-d @ 1-d.
            check(
                &linalg::matmul(&w, &mm).unwrap(),
                &v.view()
                    .into_dimensionality::<ndarray::Ix1>()
                    .unwrap()
                    .dot(&m2(&m))
                    .into_dyn(),
            );
            check(
                &linalg::matmul(&mm.t(), &w).unwrap(),
                &m2(&m)
                    .t()
                    .dot(&v.view().into_dimensionality::<ndarray::Ix1>().unwrap())
                    .into_dyn(),
            );
            check(
                &linalg::matmul(&w, &w).unwrap(),
                &ArrayD::from_elem(IxDyn(&[]), v.iter().map(|x| x * x).sum::<f64>()),
            );
            let xv = ArrayD::from_shape_fn(IxDyn(&[2, 1, 4]), |ix| {
                (0..5)
                    .map(|k| a[[ix[0], ix[1], ix[2], k]] * v[[k]])
                    .sum::<f64>()
            });
            check(&linalg::matmul(&x, &w).unwrap(), &xv);
        });
    }
    // float32 and int64 keep their dtype.
    let a32 = sample::<f32>(&[3, 4, 6], 14);
    let b32 = sample::<f32>(&[6, 2], 15);
    let expected = ArrayD::from_shape_fn(IxDyn(&[3, 4, 2]), |ix| {
        (0..6)
            .map(|k| a32[[ix[0], ix[1], k]] * b32[[k, ix[2]]])
            .sum::<f32>()
    });
    check(
        &linalg::matmul(
            &chunked(&a32, ChunkSpec::Block(vec![2, 3, 4])),
            &chunked(&b32, ChunkSpec::Block(vec![4, 2])),
        )
        .unwrap(),
        &expected,
    );
    let ai = iota(&[2, 3, 4]);
    let bi = iota(&[4, 2]);
    let expected = ArrayD::from_shape_fn(IxDyn(&[2, 3, 2]), |ix| {
        (0..4)
            .map(|k| ai[[ix[0], ix[1], k]] * bi[[k, ix[2]]])
            .sum::<i64>()
    });
    check(
        &linalg::matmul(
            &chunked(&ai, ChunkSpec::Block(vec![1, 2, 3])),
            &chunked(&bi, ChunkSpec::Block(vec![3, 1])),
        )
        .unwrap(),
        &expected,
    );
    let err = linalg::matmul(
        &chunked(&a, ChunkSpec::Block(vec![2, 1, 4, 5])),
        &chunked(&m, ChunkSpec::Block(vec![5, 4])).t(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("inner dimensions differ"), "{err}");
}

#[test]
fn outer_vdot_vecdot_trace_cross_and_matrix_transpose_match_their_oracles() {
    let a = sample::<f64>(&[9], 20);
    let b = sample::<f64>(&[4, 2], 21);
    let x = chunked(&a, ChunkSpec::Block(vec![4]));
    let y = chunked(&b, ChunkSpec::Block(vec![3, 1]));
    let bf: Vec<f64> = b.iter().copied().collect();
    check(
        &linalg::outer(&x, &y).unwrap(),
        &ArrayD::from_shape_fn(IxDyn(&[9, 8]), |i| a[[i[0]]] * bf[i[1]]),
    );
    // vdot flattens: 8 elements against the first 8 of a reshaped.
    let a8 = sample::<f64>(&[2, 4], 22);
    let x8 = chunked(&a8, ChunkSpec::Block(vec![1, 3]));
    let dot: f64 = a8.iter().zip(&bf).map(|(p, q)| p * q).sum();
    check_tol(
        &linalg::vdot(&x8, &y).unwrap(),
        &ArrayD::from_elem(IxDyn(&[]), dot),
        TOL_F64,
    );
    let m = sample::<f64>(&[5, 3], 23);
    let n = sample::<f64>(&[3], 24);
    let xm = chunked(&m, ChunkSpec::Block(vec![2, 2]));
    let xn = chunked(&n, ChunkSpec::Block(vec![2]));
    check(
        &linalg::vecdot(&xm, &xn, -1).unwrap(),
        &ArrayD::from_shape_fn(IxDyn(&[5]), |i| {
            (0..3).map(|k| m[[i[0], k]] * n[[k]]).sum::<f64>()
        }),
    );
    check(
        &linalg::vecdot(&xm, &xm, 0).unwrap(),
        &ArrayD::from_shape_fn(IxDyn(&[3]), |i| {
            (0..5).map(|k| m[[k, i[0]]] * m[[k, i[0]]]).sum::<f64>()
        }),
    );
    let t = sample::<f64>(&[2, 3, 4], 25);
    check(
        &linalg::matrix_transpose(&chunked(&t, ChunkSpec::Block(vec![1, 2, 3]))).unwrap(),
        &t.clone()
            .permuted_axes(vec![0, 2, 1])
            .as_standard_layout()
            .into_owned(),
    );
    let sq = iota(&[5, 5]);
    let xs = chunked(&sq, ChunkSpec::Block(vec![2, 3]));
    for off in [-2isize, 0, 1, 4, 7] {
        let expected: i64 = (0..5i64)
            .filter_map(|i| {
                let j = i + off as i64;
                (0..5).contains(&j).then(|| sq[[i as usize, j as usize]])
            })
            .sum();
        check(
            &linalg::trace(&xs, off).unwrap(),
            &ArrayD::from_elem(IxDyn(&[]), expected),
        );
    }
    let u = sample::<f64>(&[4, 3], 26);
    let w = sample::<f64>(&[4, 3], 27);
    let expected = ArrayD::from_shape_fn(IxDyn(&[4, 3]), |ix| {
        let (r, c) = (ix[0], ix[1]);
        let (p, q) = ((c + 1) % 3, (c + 2) % 3);
        u[[r, p]] * w[[r, q]] - u[[r, q]] * w[[r, p]]
    });
    let cu = chunked(&u, ChunkSpec::Block(vec![3, 3]));
    let cw = chunked(&w, ChunkSpec::Block(vec![2, 3]));
    check(&linalg::cross(&cu, &cw, -1).unwrap(), &expected);
    check(
        &linalg::cross(&cu.t(), &cw.t(), 0).unwrap(),
        &expected.t().to_owned(),
    );
    let err = linalg::cross(&xm, &xm, 0).unwrap_err().to_string();
    assert!(err.contains("length 3"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// QR and SVD

/// Row chunkings of `m` rows, each block at least `n` rows.
fn row_chunkings(m: usize, n: usize) -> Vec<(&'static str, Vec<usize>)> {
    let mut irregular = vec![n, 2 * n + 3, n + 1];
    irregular.push(m - irregular.iter().sum::<usize>());
    vec![
        ("regular", vec![m / 4; 4]),
        ("irregular", irregular),
        ("single", vec![m]),
    ]
}

fn check_qr(a: &ArrayD<f64>, q: &ArrayD<f64>, r: &ArrayD<f64>, tol: f64, what: &str) {
    let (q, r) = (m2(q), m2(r));
    let n = r.nrows();
    assert_eq!(q.dim(), (a.shape()[0], n), "{what}: Q shape");
    assert_close(&q.dot(&r).into_dyn(), a, tol, &format!("{what}: Q·R = A"));
    assert_close(
        &q.t().dot(&q).into_dyn(),
        &eye(n),
        tol,
        &format!("{what}: QᵀQ = I"),
    );
    for i in 0..n {
        for j in 0..i {
            assert_eq!(r[[i, j]], 0.0, "{what}: R[{i}, {j}] below the diagonal");
        }
    }
}

#[test]
fn tsqr_gives_q_times_r_equal_to_a_with_orthonormal_q_in_f64_and_f32() {
    let (m, n) = (240, 9);
    let a = sample::<f64>(&[m, n], 30);
    for (name, rows) in row_chunkings(m, n) {
        in_context(name, || {
            let x = chunked(&a, ChunkSpec::Explicit(vec![rows.clone(), vec![n]]));
            let (q, r) = linalg::qr(&x).unwrap();
            assert_eq!(
                q.chunks().axis(0),
                rows.as_slice(),
                "Q keeps A's row chunks"
            );
            assert_eq!((q.dtype(), r.dtype()), (DType::F64, DType::F64));
            check_qr(&a, &f64_of(&q), &f64_of(&r), 1e-12, "f64");
            let x32 = x.astype(DType::F32).unwrap();
            let (q32, r32) = linalg::qr(&x32).unwrap();
            assert_eq!((q32.dtype(), r32.dtype()), (DType::F32, DType::F32));
            let a32 = as_f64(&as_f32(&a));
            check_qr(&a32, &f64_of(&q32), &f64_of(&r32), 2e-4, "f32");
        });
    }
    // int64 input is factored in float64, as numpy's.
    let i = iota(&[20, 3]);
    let (q, r) = linalg::qr(&chunked(&i, ChunkSpec::Block(vec![5, 3]))).unwrap();
    check_qr(&as_f64(&i), &f64_of(&q), &f64_of(&r), 1e-10, "int64");
}

#[test]
fn qr_refuses_column_chunks_short_blocks_and_wide_arrays_saying_what_to_do() {
    let a = sample::<f64>(&[40, 6], 31);
    let cols = linalg::qr(&chunked(&a, ChunkSpec::Block(vec![10, 3])))
        .unwrap_err()
        .to_string();
    assert!(
        cols.contains("chunked along rows only") && cols.contains("rechunk"),
        "{cols}"
    );
    let short = linalg::qr(&chunked(&a, ChunkSpec::Block(vec![4, 6])))
        .unwrap_err()
        .to_string();
    assert!(
        short.contains("block (0, 0)") && short.contains("4 rows for 6 columns"),
        "{short}"
    );
    let wide = linalg::qr(&chunked(&a.t().to_owned(), ChunkSpec::Block(vec![6, 40])))
        .unwrap_err()
        .to_string();
    assert!(
        wide.contains("tall-and-skinny") && wide.contains("[6, 40]"),
        "{wide}"
    );
}

fn check_svd(a: &ArrayD<f64>, u: &Array, s: &Array, vt: &Array, tol: f64, what: &str) {
    let (u, s, vt) = (m2(&f64_of(u)), f64_of(s), m2(&f64_of(vt)));
    let k = s.len();
    assert_eq!(k, a.shape()[0].min(a.shape()[1]), "{what}: k");
    let mut us = u.clone();
    for (j, mut col) in us.columns_mut().into_iter().enumerate() {
        col *= s[[j]];
    }
    assert_close(
        &us.dot(&vt).into_dyn(),
        a,
        tol,
        &format!("{what}: U·diag(s)·Vᵀ = A"),
    );
    assert_close(
        &u.t().dot(&u).into_dyn(),
        &eye(k),
        tol,
        &format!("{what}: UᵀU = I"),
    );
    assert_close(
        &vt.dot(&vt.t()).into_dyn(),
        &eye(k),
        tol,
        &format!("{what}: VᵀV = I"),
    );
    for j in 1..k {
        assert!(
            s[[j - 1]] >= s[[j]] && s[[j]] >= 0.0,
            "{what}: s sorted, non-negative: {s}"
        );
    }
}

#[test]
fn svd_through_tsqr_one_chunk_and_column_chunks_reconstructs_a() {
    let a = sample::<f64>(&[180, 7], 32);
    for (name, rows) in row_chunkings(180, 7) {
        let x = chunked(&a, ChunkSpec::Explicit(vec![rows, vec![7]]));
        let (u, s, vt) = linalg::svd(&x).unwrap();
        check_svd(&a, &u, &s, &vt, 1e-11, name);
        let (u, s, vt) = linalg::svd(&x.astype(DType::F32).unwrap()).unwrap();
        assert_eq!(s.dtype(), DType::F32);
        check_svd(
            &as_f64(&as_f32(&a)),
            &u,
            &s,
            &vt,
            3e-4,
            &format!("{name} f32"),
        );
    }
    // Short and wide, chunked along columns only: through the transpose.
    let w = a.t().to_owned();
    let (u, s, vt) = linalg::svd(&chunked(&w, ChunkSpec::Block(vec![7, 50]))).unwrap();
    check_svd(&w, &u, &s, &vt, 1e-11, "wide");
    // A small square matrix in one chunk; known singular values of a diagonal matrix.
    let d = arr2(&[[0.0, 3.0], [-5.0, 0.0]]).into_dyn();
    let (u, s, vt) = linalg::svd(&chunked(&d, ChunkSpec::Block(vec![2, 2]))).unwrap();
    check_svd(&d, &u, &s, &vt, 1e-14, "2×2");
    assert_close(
        &f64_of(&s),
        &ndarray::arr1(&[5.0, 3.0]).into_dyn(),
        1e-14,
        "singular values",
    );
    let err = linalg::svd(&chunked(&a, ChunkSpec::Block(vec![60, 3])))
        .unwrap_err()
        .to_string();
    assert!(err.contains("rechunk"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// one-chunk factorizations

/// A symmetric positive-definite matrix: `M·Mᵀ + n·I`.
fn spd(n: usize, seed: u64) -> ArrayD<f64> {
    let m = m2(&sample::<f64>(&[n, n], seed));
    (m.dot(&m.t()) + Array2::<f64>::eye(n) * n as f64).into_dyn()
}

#[test]
fn cholesky_gives_l_times_lt_equal_to_a_and_refuses_an_indefinite_matrix() {
    let a = spd(12, 40);
    for (name, spec) in chunkings(a.shape()) {
        in_context(name, || {
            let l = m2(&f64_of(
                &linalg::cholesky(&chunked(&a, spec.clone())).unwrap(),
            ));
            assert_close(&l.dot(&l.t()).into_dyn(), &a, 1e-12, "L·Lᵀ = A");
            assert!(
                l.indexed_iter().all(|((i, j), &v)| j <= i || v == 0.0),
                "L is lower"
            );
        });
    }
    let l32 = linalg::cholesky(&chunked(&as_f32(&a), ChunkSpec::Block(vec![5, 5]))).unwrap();
    assert_eq!(l32.dtype(), DType::F32);
    let l32 = m2(&f64_of(&l32));
    assert_close(&l32.dot(&l32.t()).into_dyn(), &a, 1e-5, "f32 L·Lᵀ = A");
    let indefinite = arr2(&[[1.0, 2.0], [2.0, 1.0]]).into_dyn();
    let err = linalg::cholesky(&chunked(&indefinite, ChunkSpec::Block(vec![1, 1])))
        .unwrap()
        .compute_dyn()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not positive definite") && err.contains("[2, 2]"),
        "{err}"
    );
    let rect = linalg::cholesky(&chunked(
        &sample::<f64>(&[3, 2], 1),
        ChunkSpec::Block(vec![3, 2]),
    ))
    .unwrap_err()
    .to_string();
    assert!(rect.contains("square") && rect.contains("[3, 2]"), "{rect}");
}

#[test]
fn solve_inv_det_and_slogdet_satisfy_their_identities_and_known_values() {
    let a = spd(10, 41) + &(m2(&sample::<f64>(&[10, 10], 42)).into_dyn());
    let b = sample::<f64>(&[10, 3], 43);
    let v = sample::<f64>(&[10], 44);
    for (name, spec) in chunkings(a.shape()).into_iter().take(3) {
        in_context(name, || {
            let x = chunked(&a, spec.clone());
            let sol =
                f64_of(&linalg::solve(&x, &chunked(&b, ChunkSpec::Block(vec![4, 2]))).unwrap());
            assert_close(&m2(&a).dot(&m2(&sol)).into_dyn(), &b, 1e-11, "A·x = b");
            let solv = f64_of(&linalg::solve(&x, &chunked(&v, ChunkSpec::Block(vec![3]))).unwrap());
            let back = m2(&a).dot(&solv.view().into_dimensionality::<ndarray::Ix1>().unwrap());
            assert_close(&back.into_dyn(), &v, 1e-11, "A·x = b (vector)");
            let ai = m2(&f64_of(&linalg::inv(&x).unwrap()));
            assert_close(&m2(&a).dot(&ai).into_dyn(), &eye(10), 1e-11, "A·A⁻¹ = I");
        });
    }
    // Known determinants: a 3×3 by cofactor expansion, and a permutation (odd: -1).
    let m = arr2(&[[2.0, -1.0, 3.0], [4.0, 0.5, -2.0], [1.0, 5.0, 7.0]]);
    let cof = m[[0, 0]] * (m[[1, 1]] * m[[2, 2]] - m[[1, 2]] * m[[2, 1]])
        - m[[0, 1]] * (m[[1, 0]] * m[[2, 2]] - m[[1, 2]] * m[[2, 0]])
        + m[[0, 2]] * (m[[1, 0]] * m[[2, 1]] - m[[1, 1]] * m[[2, 0]]);
    let xm = chunked(&m.clone().into_dyn(), ChunkSpec::Block(vec![2, 2]));
    let det: f64 = linalg::det(&xm).unwrap().compute_scalar().unwrap();
    assert!((det - cof).abs() < 1e-12 * cof.abs(), "{det} vs {cof}");
    let (sign, logabs) = linalg::slogdet(&xm).unwrap();
    let (sign, logabs): (f64, f64) = (
        sign.compute_scalar().unwrap(),
        logabs.compute_scalar().unwrap(),
    );
    assert_eq!(sign, cof.signum());
    assert!((logabs - cof.abs().ln()).abs() < 1e-12, "{logabs}");
    let perm = arr2(&[[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]).into_dyn();
    let p = chunked(&perm, ChunkSpec::Block(vec![3, 3]));
    assert_eq!(
        linalg::det(&p).unwrap().compute_scalar::<f64>().unwrap(),
        -1.0
    );
    let d32 = linalg::det(&p.astype(DType::F32).unwrap()).unwrap();
    assert_eq!(d32.compute_scalar::<f32>().unwrap(), -1.0);
    // Singular: det 0, slogdet (0, -inf), solve and inv refuse naming the shape.
    let singular = arr2(&[[1.0, 2.0], [2.0, 4.0]]).into_dyn();
    let s = chunked(&singular, ChunkSpec::Block(vec![1, 2]));
    assert_eq!(
        linalg::det(&s).unwrap().compute_scalar::<f64>().unwrap(),
        0.0
    );
    let (sign, logabs) = linalg::slogdet(&s).unwrap();
    assert_eq!(sign.compute_scalar::<f64>().unwrap(), 0.0);
    assert_eq!(logabs.compute_scalar::<f64>().unwrap(), f64::NEG_INFINITY);
    for err in [
        linalg::inv(&s)
            .unwrap()
            .compute_dyn()
            .unwrap_err()
            .to_string(),
        linalg::solve(&s, &s)
            .unwrap()
            .compute_dyn()
            .unwrap_err()
            .to_string(),
    ] {
        assert!(err.contains("singular") && err.contains("[2, 2]"), "{err}");
    }
    let err = linalg::solve(&xm, &chunked(&v, ChunkSpec::Block(vec![5])))
        .unwrap_err()
        .to_string();
    assert!(err.contains("3 rows") && err.contains("[10]"), "{err}");
}

#[test]
fn eigh_gives_a_v_equal_to_v_diag_w_with_orthonormal_v_and_ascending_w() {
    let a = spd(9, 45) - &(eye(9) * 20.0);
    for (name, spec) in chunkings(a.shape()).into_iter().take(3) {
        in_context(name, || {
            let (w, v) = linalg::eigh(&chunked(&a, spec.clone())).unwrap();
            let (w, v) = (f64_of(&w), m2(&f64_of(&v)));
            let mut vw = v.clone();
            for (j, mut col) in vw.columns_mut().into_iter().enumerate() {
                col *= w[[j]];
            }
            assert_close(
                &m2(&a).dot(&v).into_dyn(),
                &vw.into_dyn(),
                1e-11,
                "A·V = V·diag(w)",
            );
            assert_close(&v.t().dot(&v).into_dyn(), &eye(9), 1e-12, "VᵀV = I");
            assert!((1..9).all(|j| w[[j - 1]] <= w[[j]]), "ascending: {w}");
        });
    }
    // A known spectrum: [[2, 1], [1, 2]] has eigenvalues 1 and 3.
    let k = chunked(
        &arr2(&[[2.0, 1.0], [1.0, 2.0]]).into_dyn(),
        ChunkSpec::Block(vec![2, 2]),
    );
    let w = f64_of(&linalg::eigh(&k).unwrap().0);
    assert_close(
        &w,
        &ndarray::arr1(&[1.0, 3.0]).into_dyn(),
        1e-14,
        "known eigenvalues",
    );
}

#[test]
fn lstsq_satisfies_the_normal_equations_and_solves_an_exact_system() {
    let a = sample::<f64>(&[60, 4], 46);
    let b = sample::<f64>(&[60], 47);
    for (name, rows) in row_chunkings(60, 4) {
        in_context(name, || {
            let x = f64_of(
                &linalg::lstsq(
                    &chunked(&a, ChunkSpec::Explicit(vec![rows.clone(), vec![4]])),
                    &chunked(&b, ChunkSpec::Block(vec![7])),
                )
                .unwrap(),
            );
            let x1 = x.view().into_dimensionality::<ndarray::Ix1>().unwrap();
            let resid = m2(&a).dot(&x1) - b.view().into_dimensionality::<ndarray::Ix1>().unwrap();
            let normal = m2(&a).t().dot(&resid);
            assert!(
                normal.iter().all(|v| v.abs() < 1e-10),
                "Aᵀ(Ax − b) = 0: {normal}"
            );
        });
    }
    // An exactly solvable system: b = A·[1, -2, 0.5, 3].
    let truth = ndarray::arr1(&[1.0, -2.0, 0.5, 3.0]);
    let exact = m2(&a).dot(&truth);
    let x = linalg::lstsq(
        &chunked(&a, ChunkSpec::Block(vec![15, 4])),
        &chunked(&exact.into_dyn(), ChunkSpec::Block(vec![60])),
    )
    .unwrap();
    assert_close(&f64_of(&x), &truth.into_dyn(), 1e-12, "exact solution");
}

// ---------------------------------------------------------------------------------------------
// norms

#[test]
fn vector_and_matrix_norms_match_their_definitions() {
    let a = sample::<f64>(&[6, 5], 50);
    let x = chunked(&a, ChunkSpec::Block(vec![4, 2]));
    let abs = a.mapv(f64::abs);
    let scalar = |v: f64| ArrayD::from_elem(IxDyn(&[]), v);
    let fro = a.iter().map(|v| v * v).sum::<f64>().sqrt();
    check(&linalg::norm(&x, None, None, false).unwrap(), &scalar(fro));
    check(
        &linalg::matrix_norm(&x, NormOrd::Fro, false).unwrap(),
        &scalar(fro),
    );
    let col_sums = abs.sum_axis(Axis(0));
    let row_sums = abs.sum_axis(Axis(1));
    let max = |v: &ArrayD<f64>| v.iter().copied().fold(f64::MIN, f64::max);
    let min = |v: &ArrayD<f64>| v.iter().copied().fold(f64::MAX, f64::min);
    check(
        &linalg::matrix_norm(&x, NormOrd::P(1.0), false).unwrap(),
        &scalar(max(&col_sums)),
    );
    check(
        &linalg::matrix_norm(&x, NormOrd::P(-1.0), false).unwrap(),
        &scalar(min(&col_sums)),
    );
    check(
        &linalg::matrix_norm(&x, f64::INFINITY.into(), false).unwrap(),
        &scalar(max(&row_sums)),
    );
    check(
        &linalg::matrix_norm(&x, f64::NEG_INFINITY.into(), false).unwrap(),
        &scalar(min(&row_sums)),
    );
    let kept = linalg::matrix_norm(&x, NormOrd::P(1.0), true).unwrap();
    assert_eq!(kept.shape(), &[1, 1]);
    // 2-norm and nuclear norm of a rank-one matrix u·vᵀ: both |u|·|v|.
    let u = ndarray::arr1(&[1.0, 2.0, 2.0]);
    let v = ndarray::arr1(&[3.0, 4.0]);
    let r1 = ArrayD::from_shape_fn(IxDyn(&[3, 2]), |i| u[i[0]] * v[i[1]]);
    let xr = chunked(&r1, ChunkSpec::Block(vec![2, 1]));
    check(
        &linalg::norm(&xr, Some(NormOrd::P(2.0)), None, false).unwrap(),
        &scalar(15.0),
    );
    check(
        &linalg::norm(&xr, Some(NormOrd::Nuc), None, false).unwrap(),
        &scalar(15.0),
    );
    check_tol(
        &linalg::norm(&xr, Some(NormOrd::P(-2.0)), None, false).unwrap(),
        &scalar(0.0),
        Tol {
            rtol: 0.0,
            atol: 1e-12,
        },
    );
    // Vector norms along an axis, with p = 1, 2, 3, inf, -inf, 0.
    let z = a.mapv(|v| if v.abs() < 2.0 { 0.0 } else { v });
    let xz = chunked(&z, ChunkSpec::Block(vec![4, 2]));
    for p in [1.0, 2.0, 3.0, f64::INFINITY, f64::NEG_INFINITY, 0.0] {
        let lane = |l: ndarray::ArrayView1<f64>| -> f64 {
            if p == f64::INFINITY {
                l.iter().map(|v| v.abs()).fold(0.0, f64::max)
            } else if p == f64::NEG_INFINITY {
                l.iter().map(|v| v.abs()).fold(f64::MAX, f64::min)
            } else if p == 0.0 {
                l.iter().filter(|v| **v != 0.0).count() as f64
            } else {
                l.iter().map(|v| v.abs().powf(p)).sum::<f64>().powf(1.0 / p)
            }
        };
        let expected = z.map_axis(Axis(1), lane);
        in_context(format!("p = {p}"), || {
            check(
                &linalg::vector_norm(&xz, p, Some(&[1]), false).unwrap(),
                &expected,
            );
            check(
                &linalg::norm(&xz, Some(NormOrd::P(p)), Some(&[-1]), false).unwrap(),
                &expected,
            );
        });
    }
    let kept = linalg::vector_norm(&xz, 2.0, Some(&[0]), true).unwrap();
    assert_eq!(kept.shape(), &[1, 5]);
    let err = linalg::norm(&x, Some(NormOrd::P(3.0)), None, false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("invalid matrix norm order 3"), "{err}");
}
