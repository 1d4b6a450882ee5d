//! The `plugen` binary: parse the command line, run it, print any error on one line.

use clap::Parser;

/// Fixes the compute thread count for the whole process.
///
/// Measured reason: when `RAYON_NUM_THREADS` is unset, candle 0.11 works out
/// its thread count again on every CPU matmul, and on Linux that reads
/// `/proc/cpuinfo` (`num_cpus::get_physical`). With the variable set once here
/// the plugin's inverse flow went from 0.86 to 0.08 ms, the forward flow from
/// 1.72 to 0.43 ms and a slider frame from 4.6 to 3.0 ms (`plugen bench`).
/// A value the user sets is kept.
fn fix_thread_count() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        // SAFETY: called first thing in `main`, before any other thread exists,
        // so nothing can read the environment concurrently.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", n.to_string()) };
    }
}

fn main() -> std::process::ExitCode {
    fix_thread_count();
    let cli = plugen::cli::Cli::parse();
    match plugen::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("plugen: error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
