//! Short scenario 5: speech quality (PESQ wideband) falls with loss.
//!
//! The target is PESQ above 3.0 at 5% loss. The engine does not meet it yet (2.2–3.5
//! per 10-second sample, see BENCHMARKS.md: the jitter buffer conceals a lost frame by
//! repeating the previous 20 ms without pitch alignment), so this test asserts the direction
//! and a near-transparent lossless path, not that target.

mod common;

#[test]
fn pesq_falls_with_loss() {
    let report = common::run_short("audio-pesq");
    let c = &report["figures"]["conditions"];
    let at = |i: usize| common::num(&c[i]["pesq_mean"], "pesq_mean");
    let (p0, p2, p5, p10) = (at(0), at(1), at(2), at(3));
    assert!(p0 >= 3.8, "a lossless path should sound like the original: PESQ {p0:.2}");
    assert!(p0 > p2 && p2 > p10 && p0 > p5, "PESQ does not fall with loss: {p0:.2} {p2:.2} {p5:.2} {p10:.2}");
}
