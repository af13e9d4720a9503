//! `idp`: parses the command line and hands over to [`idp::cli`].

use std::cell::Cell;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;

/// mimalloc gives the 19 MiB argon2 buffers back to the OS after each hash;
/// glibc's malloc kept them in per-thread arenas (hundreds of MB after a
/// burst of sign-ins, see docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How often a runtime thread going idle also purges: hands the free pages
/// of every mimalloc arena back to the OS at once, instead of after
/// mimalloc's own delay, which only a thread that allocates or collects
/// notices, and an idle server's threads do neither.
const PURGE_EVERY: Duration = Duration::from_millis(250);

thread_local! {
    static LAST_PURGE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Called by a runtime thread each time it runs out of tasks, before it
/// sleeps: gives back the pages its mimalloc heap holds but no longer uses.
/// mimalloc notices that a page became free (its blocks freed by other
/// threads, as when a request moves between workers) only when the owning
/// thread allocates or collects, and a sleeping worker does neither: after
/// the benchmark's load 2.3 MiB stayed resident in the idle workers' heaps
/// (docs/benchmarks.md, memory). The plain collect is cheap; the purge
/// (system calls, and page faults when the pages are used again) is done at
/// most every [`PURGE_EVERY`]: purging at every park cost several per cent
/// of the cheap endpoints' throughput.
#[allow(unsafe_code)]
fn release_free_pages() {
    let now = Instant::now();
    let purge = LAST_PURGE.with(|last| {
        let due = last
            .get()
            .is_none_or(|t| now.duration_since(t) >= PURGE_EVERY);
        if due {
            last.set(Some(now));
        }
        due
    });
    // SAFETY: `mi_collect` takes no pointers; it walks the calling thread's
    // heap and, when forced, the arenas under their own locks.
    unsafe { libmimalloc_sys::mi_collect(purge) }
}

/// Wakes one runtime thread every [`PURGE_EVERY`], so that after a load a
/// purge comes within that time (see [`release_free_pages`]); a wake-up
/// costs microseconds.
async fn purge_ticker() {
    let mut tick = tokio::time::interval(PURGE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
    }
}

fn main() -> ExitCode {
    let cli = idp::cli::Cli::parse();
    // Few blocking threads: argon2 runs there (bounded by its own semaphore), and
    // each extra thread would keep its own malloc arena of 19 MiB hash buffers.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(8)
        .on_thread_park(release_free_pages)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.spawn(purge_ticker());
    match runtime.block_on(idp::cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, but for a TOML syntax error, whose caret line points
            // at the mistake.
            let text = match &e {
                idp::cli::CliError::Config(idp::config::ConfigError::Syntax(_)) => e.to_string(),
                _ => e.to_string().replace('\n', " "),
            };
            eprintln!("error: {text}");
            ExitCode::FAILURE
        }
    }
}
