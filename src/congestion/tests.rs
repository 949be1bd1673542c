//! The estimator on simulated paths (see [`super::sim`]): it converges within a few
//! seconds, follows a step down and a step up, rides out loss bursts and reordering, and
//! does not oscillate.

use std::time::Duration;

use super::sim::{self, Path, Slice};
use super::{Bounds, Estimator, PacketResult};

const BOUNDS: Bounds = Bounds { min: 150_000, start: 2_500_000, max: 2_500_000 };

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// The slices in [from, to) seconds.
fn between(slices: &[Slice], from: f64, to: f64) -> Vec<Slice> {
    slices.iter().filter(|s| s.at > secs(from) && s.at <= secs(to)).copied().collect()
}

fn targets(slices: &[Slice]) -> (f64, f64) {
    slices.iter().fold((f64::INFINITY, 0.0_f64), |(lo, hi), s| (lo.min(s.target), hi.max(s.target)))
}

fn mean_delivered(slices: &[Slice]) -> f64 {
    slices.iter().map(|s| s.delivered).sum::<f64>() / slices.len() as f64
}

fn worst_queue(slices: &[Slice]) -> Duration {
    slices.iter().map(|s| s.queue_delay).max().unwrap_or_default()
}

/// Prints a run for `cargo test -- --nocapture`.
fn show(name: &str, slices: &[Slice]) {
    for s in slices.iter().step_by(5) {
        println!(
            "{name} {:5.1}s target {:5.0} kbit/s delivered {:5.0} queue {:4} ms lost {}",
            s.at.as_secs_f64(),
            s.target / 1000.0,
            s.delivered / 1000.0,
            s.queue_delay.as_millis(),
            s.lost
        );
    }
}

#[test]
fn converges_on_a_steady_thin_link_and_stays() {
    let link = 1_500_000.0;
    let slices = sim::run(&Path::shaped(link), BOUNDS, secs(40.0));
    show("steady", &slices);
    // Within 4 s of the start at 2.5 Mbit/s the estimate is under the link and stays near it.
    let settled = between(&slices, 4.0, 40.0);
    let (lo, hi) = targets(&settled);
    assert!(hi <= 1.1 * link, "never far above the link after 4 s: {hi:.0}");
    assert!(lo >= 0.55 * link, "never far below it: {lo:.0}");
    // No oscillation: over the last 20 s the estimate keeps within a band.
    let late = between(&slices, 20.0, 40.0);
    let (lo, hi) = targets(&late);
    assert!(hi / lo < 1.45, "a band of {lo:.0} to {hi:.0}");
    assert!(mean_delivered(&late) >= 0.75 * link, "uses the link: {:.0}", mean_delivered(&late));
    assert!(worst_queue(&late) < Duration::from_millis(150), "no standing queue: {:?}", worst_queue(&late));
}

#[test]
fn follows_a_step_down_within_a_few_seconds() {
    let mut path = Path::shaped(3_000_000.0);
    path.capacity.push((secs(15.0), 800_000.0));
    path.queue_bytes = 32_000;
    let slices = sim::run(&path, BOUNDS, secs(35.0));
    show("down", &slices);
    let before = between(&slices, 10.0, 15.0);
    assert!(targets(&before).0 >= 2_000_000.0, "near the top before: {:?}", targets(&before));
    let after = between(&slices, 18.0, 35.0);
    let (lo, hi) = targets(&after);
    assert!(hi <= 1.1 * 800_000.0, "under the new link 3 s after the step: {hi:.0}");
    assert!(lo >= 0.5 * 800_000.0, "and not collapsed: {lo:.0}");
    assert!(worst_queue(&between(&slices, 18.0, 35.0)) < Duration::from_millis(200));
}

#[test]
fn follows_a_step_up() {
    let mut path = Path::shaped(800_000.0);
    path.capacity.push((secs(15.0), 3_000_000.0));
    let slices = sim::run(&path, BOUNDS, secs(30.0));
    show("up", &slices);
    let before = between(&slices, 10.0, 15.0);
    assert!(targets(&before).1 <= 900_000.0, "{:?}", targets(&before));
    let reached = |bps: f64| slices.iter().find(|s| s.at > secs(15.0) && s.target >= bps).map(|s| s.at);
    // Half the top again within 5 s (a lower tier's top), 2 Mbit/s within 10 s.
    let half = reached(1_250_000.0).expect("the estimate grows after the link widens");
    assert!(half <= secs(20.0), "1.25 Mbit/s reached at {half:?}");
    let most = reached(2_000_000.0).expect("the estimate grows to 2 Mbit/s after the link widens");
    assert!(most <= secs(25.0), "2 Mbit/s reached at {most:?}");
}

#[test]
fn rides_out_a_loss_burst_and_ignores_light_loss() {
    let mut path = Path::shaped(10_000_000.0);
    path.random_loss = vec![(secs(0.0), 0.01), (secs(10.0), 0.25), (secs(12.0), 0.01)];
    let slices = sim::run(&path, BOUNDS, secs(30.0));
    show("loss", &slices);
    let light = between(&slices, 5.0, 10.0);
    // 1 % loss is not congestion; judged over 20 packets, a rare cluster of 3 dips it a little.
    let mean = light.iter().map(|s| s.target).sum::<f64>() / light.len() as f64;
    assert!(mean >= 2_400_000.0 && targets(&light).0 >= 2_200_000.0, "{mean:.0} {:?}", targets(&light));
    let burst = between(&slices, 10.0, 12.5);
    assert!(targets(&burst).0 <= 1_800_000.0, "25 % loss cuts: {:?}", targets(&burst));
    assert!(targets(&burst).0 >= 500_000.0, "but not to nothing: {:?}", targets(&burst));
    let reached = slices.iter().find(|s| s.at > secs(12.5) && s.target >= 2_400_000.0);
    assert!(reached.is_some_and(|s| s.at <= secs(22.0)), "back after the burst: {:?}", reached.map(|s| s.at));
}

#[test]
fn reordering_is_not_congestion() {
    let mut path = Path::shaped(10_000_000.0);
    path.reorder = 0.05;
    let slices = sim::run(&path, BOUNDS, secs(20.0));
    let (lo, _) = targets(&between(&slices, 2.0, 20.0));
    assert!(lo >= 2_400_000.0, "5 % of packets one place late lower nothing: {lo:.0}");
}

#[test]
fn remb_is_a_ceiling_and_receiver_reports_carry_loss() {
    let mut estimator = Estimator::new(BOUNDS);
    assert_eq!(estimator.on_remb(secs(1.0), 900_000), 900_000);
    assert_eq!(estimator.snapshot().remb_bps, Some(900_000));
    // Without transport-wide feedback, a receiver report's loss still cuts (after the
    // first two seconds, where loss is often the viewer not being ready yet).
    assert_eq!(estimator.on_receiver_report(secs(1.5), 0.3), 900_000, "start phase");
    assert_eq!(estimator.on_receiver_report(secs(3.5), 0.3), 765_000);
    assert_eq!(estimator.on_receiver_report(secs(3.6), 0.3), 765_000, "once per round trip and 300 ms");
}

#[test]
fn bounds_hold_and_no_feedback_changes_nothing() {
    let mut estimator = Estimator::new(Bounds { min: 300_000, start: 5_000_000, max: 2_000_000 });
    assert_eq!(estimator.target(), 2_000_000, "the start is within the bounds");
    assert_eq!(estimator.on_feedback(secs(1.0), &[]), 2_000_000);
    let lost: Vec<_> = (0..100)
        .map(|i| PacketResult { send_time: secs(1.0 + f64::from(i) / 1000.0), size: 1200, arrival: None })
        .collect();
    for i in 0..40 {
        estimator.on_feedback(secs(2.0 + f64::from(i)), &lost);
    }
    assert_eq!(estimator.target(), 300_000, "all lost: down to the minimum, not below");
}

/// A journal of a real session (`recorded/`, written with `ROBOCAST_LINK_JOURNAL`) replayed
/// through a new estimator: (time, target) after each feedback.
fn replay(journal: &str) -> Vec<(Duration, u64)> {
    let mut estimator = Estimator::new(BOUNDS);
    let mut targets = Vec::new();
    for line in journal.lines() {
        let event: super::journal::Event = serde_json::from_str(line).expect("a journal line");
        event.apply(&mut estimator);
        if let (super::journal::Event::Feedback { .. }, Some(at)) = (&event, event.at()) {
            targets.push((at, estimator.target()));
        }
    }
    for (at, target) in targets.iter().step_by(10) {
        println!("replay {:5.1}s target {:5} kbit/s", at.as_secs_f64(), target / 1000);
    }
    targets
}

fn replayed_between(targets: &[(Duration, u64)], from: f64, to: f64) -> (u64, u64) {
    let window: Vec<u64> =
        targets.iter().filter(|(at, _)| (secs(from)..secs(to)).contains(at)).map(|&(_, t)| t).collect();
    assert!(!window.is_empty(), "no feedback between {from} and {to} s");
    (window.iter().copied().min().unwrap_or(0), window.iter().copied().max().unwrap_or(0))
}

#[test]
fn a_recorded_chromium_session_behind_800_kbits_converges_under_the_link() {
    // Headless Chromium behind a veth shaped to 800 kbit/s (tbf, 32 kB bucket, 100 ms of
    // queue), robocast at its 2.5 Mbit/s default (`benches/links.rs`, 8.5 s).
    let targets = replay(include_str!("recorded/chromium-800kbit.jsonl"));
    assert_eq!(targets.first().map(|t| t.1), Some(2_564_000), "it starts at the configured rate");
    let (lo, hi) = replayed_between(&targets, 3.0, 9.0);
    assert!(hi <= 1_000_000, "under the link (and the audio) from 3 s: {hi}");
    assert!(lo >= 300_000, "and not collapsed: {lo}");
}

#[test]
fn a_recorded_chromium_session_follows_its_link_as_it_widens() {
    // The slow viewer of the benchmark's four: 800 kbit/s, then 3 Mbit/s from about 8 s.
    let targets = replay(include_str!("recorded/chromium-800kbit-widened.jsonl"));
    let (_, narrow) = replayed_between(&targets, 3.0, 7.0);
    assert!(narrow <= 1_100_000, "under the narrow link: {narrow}");
    let last = targets.last().map_or(0, |t| t.1);
    assert!(last >= 2_000_000, "grown after the link widened: {last}");
}

#[test]
fn finds_a_widened_link_quickly_whenever_it_widens() {
    // A viewer on the lower tier (eager) goes back to the top when its estimate reaches about
    // 1.6 Mbit/s (the split and a tenth, for video, less the audio and the encoder's share);
    // the issue asks for the top tier within 5 s. Where the link widens in the estimate's
    // saw tooth (just after an over-use or long after) changes how long it takes: every
    // half second of one 4-second period.
    let mut times = Vec::new();
    for k in 0..8 {
        let at = 15.0 + f64::from(k) * 0.5;
        let mut path = Path::shaped(800_000.0);
        path.capacity.push((secs(at), 3_000_000.0));
        let slices = sim::run_as(&path, BOUNDS, secs(at + 10.0), true);
        let reached =
            slices.iter().find(|s| s.at > secs(at) && s.target >= 1_600_000.0).map(|s| s.at - secs(at));
        let reached = reached.expect("the estimate grows after the link widens");
        println!("widened at {at} s: 1.6 Mbit/s {:.1} s later", reached.as_secs_f64());
        times.push(reached);
        assert!(targets(&between(&slices, at + 6.0, at + 10.0)).0 >= 2_000_000.0, "and goes on to the top");
    }
    times.sort();
    assert!(times[7] <= secs(4.5), "the slowest {:?}", times[7]);
    assert!(times[4] <= secs(4.0), "the median {:?}", times[4]);
}

#[test]
fn an_eager_viewer_on_a_steady_thin_link_stays_under_it() {
    let link = 800_000.0;
    let slices = sim::run_as(&Path::shaped(link), BOUNDS, secs(40.0), true);
    show("eager steady", &slices);
    let late = between(&slices, 10.0, 40.0);
    let (lo, hi) = targets(&late);
    assert!(hi <= 1.2 * link && lo >= 0.55 * link, "a band of {lo:.0} to {hi:.0}");
    assert!(mean_delivered(&late) >= 0.75 * link, "uses the link: {:.0}", mean_delivered(&late));
    assert!(worst_queue(&late) < Duration::from_millis(200), "no standing queue: {:?}", worst_queue(&late));
    let lost: u32 = late.iter().map(|s| s.lost).sum();
    println!("eager steady: {lo:.0} to {hi:.0}, {lost} lost in 30 s");
    assert!(lost <= 30, "{lost} packets lost in 30 s");
}
