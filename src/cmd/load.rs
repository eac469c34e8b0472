//! `tern load`: runs the load generator in [`crate::tools::load`] and prints a
//! summary plus one JSON line.

use std::time::Duration;

use anyhow::ensure;

use crate::cli::LoadArgs;
use crate::tools::load::browser::{self, BrowserConfig, BrowserSession};
use crate::tools::load::{self, LoadConfig};

/// The config the flags describe.
pub fn config(args: &LoadArgs) -> anyhow::Result<LoadConfig> {
    ensure!(
        args.duration.is_finite() && args.duration > 0.0,
        "--duration must be a positive number of seconds"
    );
    Ok(LoadConfig {
        server: args.server,
        user: args.user.name.clone(),
        password: args.user.password.expose().clone(),
        allocations: args.allocations,
        size: args.size,
        burst: args.burst,
        rate: args.rate,
        duration: Duration::from_secs_f64(
            args.duration.min(load::MAX_DURATION.as_secs_f64() + 1.0),
        ),
        direction: args.direction,
        window: args.window,
        gso: !args.no_gso,
        setup_window: args.setup_window.max(1),
        drain: Duration::from_millis(args.drain_ms),
        server_pid: args.server_pid,
    })
}

pub fn run(args: &LoadArgs) -> anyhow::Result<()> {
    let cfg = config(args)?;
    if args.allocate_only {
        let r = load::allocate_only(&cfg)?;
        if !args.json {
            println!(
                "tern load --allocate-only → {}: {} Allocate+ChannelBind in {:.3} s = {:.0}/s ({} in flight); delete {:.3} s{}",
                r.server,
                r.allocations,
                r.allocate_s,
                r.allocate_per_s,
                r.window,
                r.delete_s,
                r.server_us_per_alloc
                    .map(|us| format!("; server CPU {us:.1} µs per allocation"))
                    .unwrap_or_default()
            );
        }
        println!("{}", serde_json::to_string(&r)?);
        return Ok(());
    }
    if args.browser {
        return run_browser(cfg, args);
    }
    let r = load::run(&cfg)?;
    if !args.json {
        println!("{}", load::summary(&r));
    }
    println!("{}", serde_json::to_string(&r)?);
    Ok(())
}

/// `--browser`: one browser-like run over freshly set-up flows.
fn run_browser(base: LoadConfig, args: &LoadArgs) -> anyhow::Result<()> {
    let mut cfg = BrowserConfig {
        base,
        rate: 1,
        video_packets: args.video_packets,
    };
    cfg.rate = args.rate.unwrap_or(cfg.realtime_rate().ceil() as u64);
    let mut session = BrowserSession::establish(&cfg)?;
    let r = session.run(&cfg);
    let closed = session.close();
    let r = r?;
    closed?;
    if !args.json {
        println!("{}", browser::summary(&r));
    }
    println!("{}", serde_json::to_string(&r)?);
    Ok(())
}
