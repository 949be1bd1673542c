//! The `robocast` command: parse flags, start logging, run the daemon or a subcommand.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use robocast::config::{Config, Overrides};

/// Makes a robot's camera and microphone reachable from any browser over WebRTC.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    overrides: Overrides,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon (the default)
    Run,
    /// List cameras, audio devices and the usable encoders
    Devices {
        /// Also list every camera format and what the audio libraries said
        #[arg(long, short)]
        verbose: bool,
    },
    /// Build the configured pipelines for ~2 s and print what was chosen and its latency
    Check {
        /// Also print the full GStreamer caps of each stream
        #[arg(long, short)]
        verbose: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = match cli.command {
        None | Some(Command::Run) => robocast::logging::DEFAULT_FILTER,
        Some(_) => robocast::logging::COMMAND_FILTER,
    };
    robocast::logging::init(filter);
    match start(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("robocast: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn start(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = Config::load(&cli.overrides)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => runtime.block_on(robocast::run(config, shutdown_signal()))?,
        Command::Devices { verbose } => {
            robocast::media::init()?;
            print!("{}", robocast::media::devices::report(verbose));
        }
        Command::Check { verbose } => return runtime.block_on(robocast::check::run(config, verbose)),
    }
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C or SIGTERM (systemd stop).
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
