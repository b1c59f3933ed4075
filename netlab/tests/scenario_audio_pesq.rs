//! Short scenario 5: speech quality (PESQ wideband) falls with loss but stays above 3.0 at 5%,
//! in a real call, and bursty loss makes the speaker send more than one copy per packet.
//!
//! Listeners report their audio loss and its runs, so the speaker sends each packet with copies
//! of the frames before it (one, µ-law, for random loss; up to four for bursts) and nearly every
//! lost frame is played from a copy; what is left (longer bursts, the first second before the
//! reports arrive) is concealed. One 10 s copy at 5% loss scores 4.0–4.5 with this;
//! `concealment_pesq.rs` checks concealment alone, `bursty_loss_pesq.rs` the depth's gain.

mod common;

#[test]
fn pesq_falls_with_loss() {
    let report = common::run_short("audio-pesq");
    let c = &report["figures"]["conditions"];
    let at = |i: usize| common::num(&c[i]["pesq_mean"], "pesq_mean");
    let (p0, p2, p5, p10) = (at(0), at(1), at(2), at(3));
    assert!(p0 >= 3.8, "a lossless path should sound like the original: PESQ {p0:.2}");
    assert!(p0 > p2 && p2 > p10 && p0 > p5, "PESQ does not fall with loss: {p0:.2} {p2:.2} {p5:.2} {p10:.2}");
    assert!(p5 > 3.0, "speech through 5% loss scores {p5:.2}, the target is above 3.0");
    let depth = |i: usize| common::num(&c[i]["typical_depth"], "typical_depth");
    assert_eq!(depth(2), 1.0, "random loss: one copy most of the time");
    assert!(depth(4) > 1.0, "bursty loss: more than one copy, got {}", depth(4));
}
