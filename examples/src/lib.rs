//! Runnable examples of tessera live beside this file (`mean.rs` …); run them with
//! `cargo run --release --example NAME`. This library holds nothing but the crate root cargo needs.
