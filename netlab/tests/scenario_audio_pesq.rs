//! Short scenario 5: speech quality (PESQ wideband) falls with loss but stays above 3.0 at 5%.

mod common;

#[test]
fn pesq_falls_with_loss_and_holds_at_five_percent() {
    let report = common::run_short("audio-pesq");
    let c = &report["figures"]["conditions"];
    let at = |i: usize| common::num(&c[i]["pesq_mean"], "pesq_mean");
    let (p0, p5, p10) = (at(0), at(2), at(3));
    assert!(p0 > p5 && p0 > p10, "PESQ does not fall with loss: 0% {p0:.2}, 5% {p5:.2}, 10% {p10:.2}");
    assert!(p5 > 3.0, "PESQ at 5% loss is {p5:.2}");
}
