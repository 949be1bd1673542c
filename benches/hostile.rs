//! The hostile-input benchmark (`cargo bench --bench hostile`; BENCHMARKS.md, "Hostile input").
//!
//! robocast runs as a child process with the test sources at 640x360@30 and 16 viewer
//! slots. One honest webrtc-rs viewer watches throughout while 16 tasks send a mix of
//! malformed and hostile requests ([`inputs`]) at a fixed rate, each on a fresh
//! connection. robocast's RSS is sampled every second. Then come connect/DELETE cycles
//! and clients that vanish without DELETE, timed until `/api/sessions` forgets them.
//!
//! Environment: `ROBOCAST_BENCH_QUICK=1` (a short run for CI; BENCHMARKS.md untouched),
//! `ROBOCAST_BENCH_ONLY=sdp,json,...,cycles,vanished` (only these parts),
//! `ROBOCAST_BENCH_MATCH=<text>` (only inputs whose `category: name` contains it),
//! `ROBOCAST_BENCH_KEEP=<n>` (answered hostile sessions kept alive for trickle and
//! DELETE; 4), `ROBOCAST_BENCH_REQUESTS=N`,
//! `ROBOCAST_BENCH_BIN=<robocast binary>` and `ROBOCAST_BENCH_WRAP="<command> <args>"`
//! (run robocast under e.g. a heap profiler). Any of the last six leaves BENCHMARKS.md
//! untouched too.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "hostile/daemon.rs"]
mod daemon;
#[path = "hostile/inputs.rs"]
mod inputs;
#[path = "hostile/report.rs"]
mod report;
#[path = "hostile/sdp.rs"]
mod sdp;
#[path = "shared/report.rs"]
mod shared;
#[path = "hostile/slots.rs"]
mod slots;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use common::viewer::{Received, ViewerOptions};
use daemon::{Daemon, Outcome, exchange, head_and_body, header, id_of, rss_of, session_ids};
use inputs::{Category, Input, Rng, SESSION, Target};
use slots::{SlotStats, connect_viewer, cycles, vanished, wait_frames, wait_only};

const RATE: u64 = 400;
const TASKS: u64 = 16;
const SEED: u64 = 0x00b0_ca57;
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a kept hostile session counts as live: it never connects, so robocast ends
/// it after its connect timeout (10 s).
const KEPT_FOR: Duration = Duration::from_secs(8);
const HONEST_SHARE_OF_TRICKLE: u64 = 4;

/// How much to run: the full benchmark, or the quick check CI runs.
struct Plan {
    quick: bool,
    requests: u64,
    /// Only inputs whose `category: name` contains this.
    matching: Option<String>,
    /// Answered hostile sessions kept alive (the other clients DELETE theirs at once, so
    /// that the next odd offers find a free slot and get as far as a peer connection).
    keep: usize,
    warm_up: u64,
    categories: Vec<Category>,
    cycles: usize,
    vanished: usize,
    vanish_batch: usize,
    after_load: Duration,
    slot_deadline: Duration,
    write: bool,
}

impl Plan {
    fn from_env() -> Result<Plan> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let quick = var("ROBOCAST_BENCH_QUICK").is_some_and(|v| v != "0");
        let only: Option<Vec<String>> =
            var("ROBOCAST_BENCH_ONLY").map(|v| v.split(',').map(|s| s.trim().to_owned()).collect());
        let wanted = |name: &str| only.as_ref().is_none_or(|only| only.iter().any(|o| o == name));
        let categories: Vec<Category> = Category::ALL.into_iter().filter(|c| wanted(c.name())).collect();
        if let Some(only) = &only {
            let known: Vec<&str> =
                Category::ALL.iter().map(|c| c.name()).chain(["cycles", "vanished"]).collect();
            if let Some(unknown) = only.iter().find(|o| !known.contains(&o.as_str())) {
                bail!("ROBOCAST_BENCH_ONLY: unknown part `{unknown}`; known: {}", known.join(", "));
            }
        }
        let requests = match var("ROBOCAST_BENCH_REQUESTS") {
            Some(n) => n.parse().context("ROBOCAST_BENCH_REQUESTS must be a number")?,
            None if quick => 1_500,
            None => 27_000,
        };
        let requests = if categories.is_empty() { 0 } else { requests };
        // Any other knob makes the run unlike the one BENCHMARKS.md describes.
        let custom = std::env::vars().any(|(name, value)| {
            name.starts_with("ROBOCAST_BENCH_") && name != "ROBOCAST_BENCH_QUICK" && !value.is_empty()
        });
        Ok(Plan {
            quick,
            requests,
            matching: var("ROBOCAST_BENCH_MATCH"),
            keep: match var("ROBOCAST_BENCH_KEEP") {
                Some(n) => n.parse().context("ROBOCAST_BENCH_KEEP must be a number")?,
                None => 4,
            },
            warm_up: if quick { requests / 5 } else { requests / 9 },
            categories,
            cycles: if !wanted("cycles") {
                0
            } else if quick {
                20
            } else {
                300
            },
            vanished: if !wanted("vanished") {
                0
            } else if quick {
                5
            } else {
                100
            },
            vanish_batch: 10,
            after_load: Duration::from_secs(if quick { 5 } else { 30 }),
            slot_deadline: Duration::from_secs(if quick { 30 } else { 60 }),
            write: !quick && only.is_none() && !custom,
        })
    }
}

fn progress(message: &str) {
    eprintln!("bench: {message}");
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn main() -> Result<()> {
    shared::block_on(run(Plan::from_env()?))
}

#[derive(Default)]
pub(crate) struct CategoryStats {
    pub(crate) outcomes: BTreeMap<Outcome, u64>,
    pub(crate) millis: Vec<f64>,
}

pub(crate) struct MemoryPoint {
    pub(crate) what: String,
    pub(crate) requests: u64,
    pub(crate) rss: u64,
    pub(crate) anon: u64,
}

pub(crate) struct Results {
    pub(crate) quick: bool,
    pub(crate) run_time: Duration,
    pub(crate) sent: u64,
    pub(crate) load_time: Duration,
    pub(crate) rate: u64,
    pub(crate) tasks: u64,
    pub(crate) seed: u64,
    /// Per phase: mean frames/s and the worst 1-s window.
    pub(crate) viewer_fps: Vec<(String, (f64, f64))>,
    pub(crate) memory: Vec<MemoryPoint>,
    /// MB per 10,000 requests after warm-up: VmRSS, RssAnon.
    pub(crate) slope: (f64, f64),
    pub(crate) by_category: BTreeMap<Category, CategoryStats>,
    pub(crate) by_input: BTreeMap<String, BTreeMap<Outcome, u64>>,
    pub(crate) slots: Vec<SlotStats>,
    pub(crate) log: HashMap<String, u64>,
    pub(crate) exit: String,
}

/// One sample a second: time, requests answered, VmRSS, RssAnon (KiB), viewer frames.
#[derive(Clone, Copy)]
struct Sample {
    at: Instant,
    requests: u64,
    rss: u64,
    anon: u64,
    frames: u64,
}

/// Responses counted per category and per input (`category: name`).
#[derive(Default)]
struct Tally {
    by_category: BTreeMap<Category, CategoryStats>,
    by_input: BTreeMap<String, BTreeMap<Outcome, u64>>,
}

/// What the load tasks share.
struct Load {
    addr: SocketAddr,
    inputs: Vec<Input>,
    /// Per enabled category: its weight and its inputs.
    mix: Vec<(u64, Vec<usize>)>,
    total: u64,
    issued: AtomicU64,
    done: AtomicU64,
    honest: String,
    /// How the clients that give up after their answer are counted, and how many do.
    give_up: Input,
    keep: usize,
    /// Answered hostile sessions kept alive, with when. A std mutex: held for a scan of
    /// a few entries, never across an await.
    pool: Mutex<VecDeque<(String, Instant)>>,
    tally: Mutex<Tally>,
}

impl Load {
    fn pick(&self, rng: &mut Rng) -> &Input {
        let total: u64 = self.mix.iter().map(|(w, _)| w).sum();
        let mut roll = rng.below(total);
        for (weight, inputs) in &self.mix {
            if roll < *weight {
                return &self.inputs[inputs[rng.below(inputs.len() as u64) as usize]];
            }
            roll -= weight;
        }
        &self.inputs[0]
    }

    /// The input's bytes with [`SESSION`] replaced by a session id of the right kind.
    fn bytes(&self, input: &Input, rng: &mut Rng) -> Vec<u8> {
        let id = match input.target {
            Target::None => return input.bytes.clone(),
            Target::Live if rng.below(HONEST_SHARE_OF_TRICKLE) == 0 => Some(self.honest.clone()),
            Target::Live => {
                let pool = self.live_pool();
                pool.get(rng.below(pool.len().max(1) as u64) as usize).map(|(id, _)| id.clone())
            }
            Target::Hostile => self.live_pool().pop_front().map(|(id, _)| id),
        };
        let id = id.unwrap_or_else(|| rng.hex_id());
        let at = input.bytes.windows(SESSION.len()).position(|w| w == SESSION.as_bytes());
        let Some(at) = at else { return input.bytes.clone() };
        [&input.bytes[..at], id.as_bytes(), &input.bytes[at + SESSION.len()..]].concat()
    }

    /// The session an offer of any category opened, if it was answered (robocast also
    /// answers offers sent as `text/plain` or with odd JSON).
    fn opened(input: &Input, outcome: Outcome, raw: &[u8]) -> Option<String> {
        if !input.bytes.starts_with(b"POST ") || !outcome.is_success() {
            return None;
        }
        let (head, body) = head_and_body(raw)?;
        match header(head, "location") {
            Some(location) => Some(id_of(location)),
            None => {
                serde_json::from_slice::<serde_json::Value>(body).ok()?["session"].as_str().map(Into::into)
            }
        }
    }

    /// The kept hostile sessions, without those robocast has ended by now.
    fn live_pool(&self) -> MutexGuard<'_, VecDeque<(String, Instant)>> {
        let mut pool = lock(&self.pool);
        pool.retain(|(_, kept)| kept.elapsed() < KEPT_FOR);
        pool
    }

    /// Keeps the session if fewer than `keep` are kept; false if the client should go.
    fn keep(&self, id: &str) -> bool {
        let mut pool = self.live_pool();
        let room = pool.len() < self.keep;
        if room {
            pool.push_back((id.to_owned(), Instant::now()));
        }
        room
    }

    fn record(&self, input: &Input, outcome: Outcome, took: Duration) {
        let mut tally = lock(&self.tally);
        let stats = tally.by_category.entry(input.category).or_default();
        *stats.outcomes.entry(outcome).or_default() += 1;
        stats.millis.push(took.as_secs_f64() * 1e3);
        let name = format!("{}: {}", input.category.name(), input.name);
        *tally.by_input.entry(name).or_default().entry(outcome).or_default() += 1;
    }
}

async fn load_task(load: Arc<Load>, index: u64) {
    let mut rng = Rng::new(SEED ^ (index + 1).wrapping_mul(0x9e37_79b9));
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 * TASKS / RATE));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if load.issued.fetch_add(1, Ordering::Relaxed) >= load.total {
            return;
        }
        let input = load.pick(&mut rng);
        let bytes = load.bytes(input, &mut rng);
        let start = Instant::now();
        let (outcome, raw) = exchange(load.addr, &bytes, input.half_close).await;
        load.record(input, outcome, start.elapsed());
        load.done.fetch_add(1, Ordering::Relaxed);
        // A few answered clients stay (targets for trickle and DELETE); the others give
        // up at once, which frees the slot for the next odd offer.
        if let Some(id) = Load::opened(input, outcome, &raw).filter(|id| !load.keep(id)) {
            let start = Instant::now();
            let delete = inputs::request("DELETE", &format!("/whep/{id}"), &[], b"");
            let (outcome, _) = exchange(load.addr, &delete, false).await;
            load.record(&load.give_up, outcome, start.elapsed());
        }
    }
}

/// Samples robocast's memory and the viewer's frames once a second until `stop`.
fn sampler(
    daemon: &Daemon,
    received: Arc<Received>,
    load: Arc<Load>,
    stop: Arc<AtomicBool>,
) -> Arc<Mutex<Vec<Sample>>> {
    let samples = Arc::new(Mutex::new(Vec::new()));
    let (pid, out) = (daemon.pid, Arc::clone(&samples));
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        while !stop.load(Ordering::Relaxed) {
            ticker.tick().await;
            let Ok((rss, anon)) = rss_of(pid) else { break };
            lock(&out).push(Sample {
                at: Instant::now(),
                requests: load.done.load(Ordering::Relaxed),
                rss,
                anon,
                frames: received.video_frames.load(Ordering::Relaxed),
            });
        }
    });
    samples
}

/// Mean frames/s between two instants and the worst 1-s window among the samples.
fn fps(samples: &[Sample], from: Instant, to: Instant) -> (f64, f64) {
    let window: Vec<&Sample> = samples.iter().filter(|s| s.at >= from && s.at <= to).collect();
    let (Some(first), Some(last)) = (window.first(), window.last()) else { return (f64::NAN, f64::NAN) };
    let mean = (last.frames - first.frames) as f64 / last.at.duration_since(first.at).as_secs_f64().max(1e-9);
    let worst = window
        .windows(2)
        .map(|w| (w[1].frames - w[0].frames) as f64 / w[1].at.duration_since(w[0].at).as_secs_f64())
        .fold(f64::INFINITY, f64::min);
    (mean, worst)
}

/// Least-squares slope of VmRSS and RssAnon (MB) over requests (per 10,000).
fn slope(samples: &[Sample]) -> (f64, f64) {
    let fit = |y: &dyn Fn(&Sample) -> f64| {
        let n = samples.len() as f64;
        let x = |s: &Sample| s.requests as f64 / 10_000.0;
        let (mx, my) = (samples.iter().map(x).sum::<f64>() / n, samples.iter().map(y).sum::<f64>() / n);
        let cov: f64 = samples.iter().map(|s| (x(s) - mx) * (y(s) - my)).sum();
        let var: f64 = samples.iter().map(|s| (x(s) - mx).powi(2)).sum();
        cov / var
    };
    let mb = |kib: u64| kib as f64 * 1024.0 / 1e6;
    (fit(&|s| mb(s.rss)), fit(&|s| mb(s.anon)))
}

async fn run(plan: Plan) -> Result<()> {
    let began = Instant::now();
    let mut daemon = Daemon::start().await?;
    let addr = daemon.addr;
    progress(&format!("robocast up at {addr} (pid {})", daemon.pid));

    let (base_pc, offer) = tokio::spawn(async { common::viewer::offer(&ViewerOptions::undecoded()).await })
        .await
        .map_err(|e| anyhow!("building the base offer: {e}"))?;
    let _ = base_pc.close().await;
    let inputs = inputs::catalogue(&offer, SEED);
    progress(&format!("{} distinct hostile inputs", inputs.len()));

    let honest = connect_viewer(addr).await.context("the honest viewer")?;
    if !wait_frames(&honest.received, 30, START_TIMEOUT).await {
        bail!("the honest viewer got no video within {START_TIMEOUT:?}");
    }
    let honest_id = id_of(&honest.location);
    tokio::time::sleep(Duration::from_secs(3)).await;

    let chosen = |i: &usize| {
        let input = &inputs[*i];
        plan.matching
            .as_ref()
            .is_none_or(|m| format!("{}: {}", input.category.name(), input.name).contains(m))
    };
    let mix: Vec<(u64, Vec<usize>)> = plan
        .categories
        .iter()
        .map(|&c| {
            (c.weight(), (0..inputs.len()).filter(|i| inputs[*i].category == c).filter(chosen).collect())
        })
        .filter(|(_, inputs): &(u64, Vec<usize>)| !inputs.is_empty())
        .collect();
    if mix.is_empty() && plan.requests > 0 {
        bail!("no hostile input matches ROBOCAST_BENCH_ONLY and ROBOCAST_BENCH_MATCH");
    }
    let load = Arc::new(Load {
        addr,
        inputs,
        mix,
        total: plan.requests,
        issued: AtomicU64::new(0),
        done: AtomicU64::new(0),
        honest: honest_id.clone(),
        give_up: Input {
            category: Category::Delete,
            name: "DELETE its own session right after the answer".into(),
            bytes: Vec::new(),
            target: Target::None,
            half_close: false,
        },
        keep: plan.keep,
        pool: Mutex::new(VecDeque::new()),
        tally: Mutex::new(Default::default()),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let samples = sampler(&daemon, Arc::clone(&honest.received), Arc::clone(&load), Arc::clone(&stop));
    let point = |what: &str, requests: u64| -> Result<MemoryPoint> {
        let (rss, anon) = rss_of(daemon.pid)?;
        Ok(MemoryPoint { what: what.into(), requests, rss, anon })
    };
    let mut memory = vec![point("before the load, viewer watching", 0)?];
    let watched_from = Instant::now();

    progress(&format!("{} hostile requests at {RATE}/s from {TASKS} tasks", plan.requests));
    let load_start = Instant::now();
    let tasks: Vec<_> = (0..TASKS).map(|i| tokio::spawn(load_task(Arc::clone(&load), i))).collect();
    for task in tasks {
        task.await.context("a load task panicked")?;
    }
    let load_time = load_start.elapsed();
    let load_end = Instant::now();
    let sent = load.done.load(Ordering::Relaxed);
    let during_load: Vec<Sample> = lock(&samples).iter().copied().filter(|s| s.at >= load_start).collect();
    if let Some(s) = during_load.iter().find(|s| s.requests >= plan.warm_up) {
        memory.push(MemoryPoint {
            what: "after warm-up".into(),
            requests: s.requests,
            rss: s.rss,
            anon: s.anon,
        });
    }
    memory.push(point("end of the load", sent)?);
    let after_warm_up: Vec<Sample> = during_load.into_iter().filter(|s| s.requests >= plan.warm_up).collect();
    let slope = if after_warm_up.len() >= 3 { slope(&after_warm_up) } else { (f64::NAN, f64::NAN) };

    progress(&format!("load done in {:.1} s; waiting {:?}", load_time.as_secs_f64(), plan.after_load));
    tokio::time::sleep(plan.after_load).await;
    memory.push(point(&format!("{} s after the load", plan.after_load.as_secs()), sent)?);

    let mut slots = Vec::new();
    if plan.cycles + plan.vanished > 0 {
        wait_only(addr, &honest_id, Duration::from_secs(30)).await?;
    }
    if plan.cycles > 0 {
        progress(&format!("{} connect/DELETE cycles", plan.cycles));
        slots.push(cycles(addr, plan.cycles, plan.slot_deadline).await);
        memory.push(point("after the cycles", sent)?);
    }
    if plan.vanished > 0 {
        progress(&format!("{} vanishing clients", plan.vanished));
        slots.push(vanished(addr, plan.vanished, plan.vanish_batch, plan.slot_deadline).await);
        memory.push(point("after the vanished clients", sent)?);
    }
    stop.store(true, Ordering::Relaxed);
    let samples = lock(&samples).clone();
    let end = Instant::now();
    let still_watching = session_ids(addr).await.is_ok_and(|ids| ids.contains(&honest_id));
    honest.close().await;

    let exit = daemon.exit_status();
    let log = lock(&daemon.log).clone();
    let Tally { by_category, by_input } = std::mem::take(&mut *lock(&load.tally));
    let results = Results {
        quick: plan.quick,
        run_time: began.elapsed(),
        sent,
        load_time,
        rate: RATE,
        tasks: TASKS,
        seed: SEED,
        viewer_fps: vec![
            ("during the hostile load".into(), fps(&samples, load_start, load_end)),
            ("whole run".into(), fps(&samples, watched_from, end)),
        ],
        memory,
        slope,
        by_category,
        by_input,
        slots,
        log,
        exit: format!(
            "{exit}; the honest viewer's session {}",
            if still_watching { "was still there" } else { "**was gone**" }
        ),
    };
    let report = results.markdown(&report::Machine::describe());
    println!("{report}");
    if plan.write {
        report::write_results(&report)?;
    }
    drop(daemon);
    progress(&format!("done in {:.0} s", began.elapsed().as_secs_f64()));
    Ok(())
}
