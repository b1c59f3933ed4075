//! Short scenario 1: 15% loss on the sender's path makes it step down from 480p.

mod common;

#[test]
fn loss_makes_the_sender_step_down() {
    let report = common::run_short("loss-step");
    let f = &report["figures"];
    let step_down = common::num(&f["step_down_s"], "step_down_s");
    assert!(step_down >= 0.0);
    assert!(common::num(&f["min_level_during_impairment"], "min level") < 3.0, "the sender stayed at 480p");
    // The call worked before the loss: the receiver got video.
    assert!(common::num(&f["receiver_fps"][0], "receiver fps before") > 5.0);
}
