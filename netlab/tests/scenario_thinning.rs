//! Short scenario 4: one receiver behind 20% loss does not cost the good receivers frames.

mod common;

#[test]
fn thinning_protects_good_receivers() {
    let report = common::run_short("thinning");
    let f = &report["figures"];
    let sender_fps = common::num(&f["sender_fps_mean"], "sender fps");
    assert!(sender_fps > 5.0, "the sender sent video");
    let good = common::num(&f["good_min_ratio"], "good receivers' ratio");
    assert!(good >= 0.8, "a good receiver got only {:.0}% of the sender's frames", good * 100.0);
    let lossy = common::num(&f["impaired_ratio"], "impaired ratio");
    assert!(lossy < good, "the lossy receiver got as many frames as the good ones");
}
