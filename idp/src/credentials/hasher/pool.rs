//! The hashing workers: a fixed set of threads (one per core by default)
//! behind one bounded queue.
//!
//! - Each worker keeps argon2's memory ([`Memory`], advised for 2 MiB
//!   pages on Linux) from one job to the next, so a busy period pays its page
//!   faults once per worker, not a few milliseconds per hash. A worker that
//!   finds the queue empty drops it (which unmaps it) and hands what else
//!   its jobs freed back to the operating system ([`release_memory`])
//!   before it sleeps (after a short [`LINGER`]): after a load the process
//!   returns to its idle size.
//! - The workers run at a lower CPU priority than the async workers
//!   ([`WORKER_NICE`]): under a sign-in flood the scheduler still prefers
//!   the request handlers (discovery, JWKS, tokens), while hashing keeps
//!   the cores the handlers leave.
//! - At most `max_queued` jobs wait; past it a job is refused at once
//!   ([`Full`]) rather than piling up requests that time out anyway.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use argon2::Block;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;

/// The nice value of a hashing worker (the async workers keep the
/// process's, 0 by default). Checked by `scripts/bench`'s login flood
/// (docs/benchmarks.md): at 10 a thread gets about a tenth of the CPU a
/// nice-0 thread gets when both want it, so JWKS and discovery keep their
/// latency while 32 sign-ins wait for hashes, yet hashing never stops: it
/// gets the cores whenever the handlers idle, which between requests they
/// do. Not the idle class (`SCHED_IDLE`): under a saturating load it would
/// starve sign-ins entirely.
pub const WORKER_NICE: i32 = 10;

/// How long a worker with nothing to do keeps its memory before it gives
/// it back: sign-ins a few milliseconds apart (a steady trickle, not only
/// a flood) then fault its pages in once, not at every hash.
const LINGER: std::time::Duration = std::time::Duration::from_millis(50);

/// A job: runs on a worker, with the worker's memory.
pub type Job = Box<dyn FnOnce(&mut Memory) + Send>;

/// argon2's working memory, kept by a worker between jobs.
///
/// On Linux it is a mapping of its own, aligned to and advised for 2 MiB
/// pages (transparent huge pages, where the kernel has them on or at
/// `madvise`): argon2 reads its memory all over, and with 4 KiB pages a
/// 19 MiB buffer is some 4,900 pages, far more than the TLB holds, each
/// miss a page walk (two levels of them in a virtual machine). A hash
/// costs about a tenth less CPU that way, and two at once get in each
/// other's way less (docs/benchmarks.md, run G). Dropping it unmaps it, so
/// the pages go back to the OS whatever the allocator keeps. Elsewhere, or
/// when the mapping fails, a plain heap buffer.
#[derive(Default)]
pub struct Memory {
    held: Held,
}

#[derive(Default)]
enum Held {
    #[default]
    Nothing,
    #[cfg(target_os = "linux")]
    Mapped(huge::Mapping),
    Heap(Vec<Block>),
}

impl Memory {
    /// `count` blocks to fill: the buffer held, or a new one in its place
    /// when it is smaller. Their content does not matter: argon2 writes
    /// every block before it reads it. `None` when the memory cannot be
    /// had (a stored hash may ask for more than the machine gives): that
    /// hash fails, the server goes on.
    pub fn blocks(&mut self, count: usize) -> Option<&mut [Block]> {
        if self.len() < count {
            // The old buffer goes first: never both at once.
            self.held = Held::Nothing;
            self.held = Self::new_held(count)?;
        }
        match &mut self.held {
            Held::Nothing => Some(&mut []),
            #[cfg(target_os = "linux")]
            Held::Mapped(mapping) => mapping.blocks().get_mut(..count),
            Held::Heap(blocks) => blocks.get_mut(..count),
        }
    }

    fn new_held(count: usize) -> Option<Held> {
        #[cfg(target_os = "linux")]
        if let Some(mapping) = huge::Mapping::new(count) {
            return Some(Held::Mapped(mapping));
        }
        let mut blocks = Vec::new();
        blocks.try_reserve_exact(count).ok()?;
        blocks.resize(count, Block::new());
        Some(Held::Heap(blocks))
    }

    fn len(&self) -> usize {
        match &self.held {
            Held::Nothing => 0,
            #[cfg(target_os = "linux")]
            Held::Mapped(mapping) => mapping.len(),
            Held::Heap(blocks) => blocks.len(),
        }
    }

    /// Whether this worker holds memory now.
    fn held(&self) -> bool {
        !matches!(self.held, Held::Nothing)
    }
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod huge {
    use std::ptr::NonNull;

    use argon2::Block;

    /// The size of a huge page on x86-64 and most arm64 kernels; on one
    /// with other sizes the advice only covers less.
    const HUGE_PAGE: usize = 2 << 20;

    /// An anonymous private mapping holding `len` blocks from a
    /// 2 MiB-aligned start, advised for huge pages; unmapped on drop.
    pub struct Mapping {
        base: NonNull<libc::c_void>,
        mapped: usize,
        blocks: NonNull<Block>,
        len: usize,
    }

    impl Mapping {
        /// `None` when the mapping cannot be made (the caller falls back
        /// to the heap).
        pub fn new(len: usize) -> Option<Self> {
            let bytes = len.checked_mul(size_of::<Block>())?;
            let rounded = bytes.checked_next_multiple_of(HUGE_PAGE)?;
            // One huge page more, to start on a 2 MiB boundary; the pages
            // before and after are never touched, so never backed.
            let mapped = rounded.checked_add(HUGE_PAGE)?;
            // SAFETY: a new anonymous private mapping at an address of the
            // kernel's choosing: it aliases nothing.
            let base = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    mapped,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            if base == libc::MAP_FAILED {
                return None;
            }
            let Some(base) = NonNull::new(base) else {
                // SAFETY: the mapping just made (at address 0), unmapped once.
                let _ = unsafe { libc::munmap(base, mapped) };
                return None;
            };
            let offset = (HUGE_PAGE - base.as_ptr().addr() % HUGE_PAGE) % HUGE_PAGE;
            // SAFETY: `offset` < HUGE_PAGE, so `start` and the `rounded`
            // bytes after it lie inside the `mapped` = `rounded` + HUGE_PAGE.
            let start = unsafe { base.byte_add(offset) };
            // SAFETY: a range inside our own mapping. Refused advice (THP
            // off, an old kernel) leaves ordinary pages, which also work.
            let _ = unsafe { libc::madvise(start.as_ptr(), rounded, libc::MADV_HUGEPAGE) };
            Some(Self {
                base,
                mapped,
                blocks: start.cast(),
                len,
            })
        }

        pub fn len(&self) -> usize {
            self.len
        }

        pub fn blocks(&mut self) -> &mut [Block] {
            // SAFETY: the mapping holds `len` blocks from `blocks`, which
            // is 2 MiB-aligned (more than a block's alignment); fresh pages
            // are zeros, a valid block (plain integers); the mapping lives
            // as long as `self`, borrowed mutably here.
            unsafe { std::slice::from_raw_parts_mut(self.blocks.as_ptr(), self.len) }
        }
    }

    // SAFETY: the mapping is owned by one `Mapping` alone and reached only
    // through `&mut self`: moving it to another thread moves that ownership.
    unsafe impl Send for Mapping {}

    impl Drop for Mapping {
        fn drop(&mut self) {
            // SAFETY: exactly the mapping made in `new`, unmapped once; no
            // borrow of it outlives `self`.
            let _ = unsafe { libc::munmap(self.base.as_ptr(), self.mapped) };
        }
    }
}

/// The queue was full: the job was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// What the hasher reports to the metrics (shared handles).
#[derive(Debug, Clone, Default)]
pub struct Load {
    /// Jobs refused because the queue was full.
    pub refused: Counter,
    /// Jobs waiting for a worker now.
    pub queued: Gauge,
}

struct Queue {
    jobs: VecDeque<Job>,
    /// The pool's handle is gone: workers end once the queue is empty.
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
    load: Load,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Jobs run outside the lock: a poisoned one holds a consistent queue.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The handle: dropping the last one lets the workers end.
pub struct Pool {
    shared: Arc<Shared>,
    max_queued: usize,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("max_queued", &self.max_queued)
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// Starts `workers` threads; at most `max_queued` jobs wait for them.
    pub fn start(workers: usize, max_queued: usize) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                closed: false,
            }),
            ready: Condvar::new(),
            load: Load::default(),
        });
        let pool = Self { shared, max_queued };
        for n in 0..workers.max(1) {
            let shared = pool.shared.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || work(&shared))?;
        }
        Ok(pool)
    }

    /// Queues `job`, or refuses it at once when `max_queued` already wait.
    pub fn submit(&self, job: Job) -> Result<(), Full> {
        let mut queue = self.shared.lock();
        if queue.jobs.len() >= self.max_queued {
            drop(queue);
            self.shared.load.refused.inc();
            return Err(Full);
        }
        queue.jobs.push_back(job);
        self.shared.load.queued.set(gauge(queue.jobs.len()));
        drop(queue);
        self.shared.ready.notify_one();
        Ok(())
    }

    pub fn load(&self) -> &Load {
        &self.shared.load
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.ready.notify_all();
    }
}

fn gauge(len: usize) -> i64 {
    i64::try_from(len).unwrap_or(i64::MAX)
}

/// A worker's life: take a job, run it with the kept memory; with nothing
/// waiting for [`LINGER`], give the memory back, then sleep.
fn work(shared: &Shared) {
    lower_priority();
    let mut memory = Memory::default();
    // Whether a job ran since memory was last handed back: a job that does
    // not use the kept memory (a legacy check, the floor's timing) still
    // leaves its own allocations in this thread's heap.
    let mut dirty = false;
    loop {
        let mut queue = shared.lock();
        let job = loop {
            if let Some(job) = queue.jobs.pop_front() {
                shared.load.queued.set(gauge(queue.jobs.len()));
                break job;
            }
            if queue.closed {
                return;
            }
            if !memory.held() && !dirty {
                queue = shared
                    .ready
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            let (again, waited) = shared
                .ready
                .wait_timeout(queue, LINGER)
                .unwrap_or_else(PoisonError::into_inner);
            queue = again;
            if waited.timed_out() && queue.jobs.is_empty() {
                drop(queue);
                memory = Memory::default();
                release_memory();
                dirty = false;
                queue = shared.lock();
            }
        };
        drop(queue);
        dirty = true;
        // A panicking job drops its answer's sender (its caller sees an
        // error); the worker and its memory stay.
        if std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut memory))).is_err() {
            tracing::error!("a password hashing job panicked");
        }
    }
}

/// Returns the memory this thread freed (argon2's buffer) to the OS now.
#[allow(unsafe_code)]
pub fn release_memory() {
    // SAFETY: `mi_collect` takes no pointers and only walks the calling
    // thread's mimalloc heap, which is the global allocator's (main.rs sets
    // mimalloc as the global allocator; in tests, where it is not, the call
    // only finds an empty mimalloc heap).
    unsafe { libmimalloc_sys::mi_collect(true) }
}

/// Puts the calling thread at [`WORKER_NICE`] (Linux keeps a nice value per
/// thread); elsewhere, or if refused, it keeps the process's priority.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn lower_priority() {
    // SAFETY: `gettid` has no preconditions; `setpriority` takes plain
    // integers and, given a thread id with PRIO_PROCESS, changes only that
    // thread's nice value (raising it needs no privilege).
    let refused = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, WORKER_NICE)
    };
    if refused != 0 {
        tracing::warn!(
            error = %std::io::Error::last_os_error(),
            "a password hashing worker keeps the normal CPU priority"
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    /// 19 MiB, argon2's default m, in 1 KiB blocks.
    const DEFAULT_BLOCKS: usize = 19 * 1024;

    #[test]
    fn memory_is_replaced_when_too_small_and_kept_for_smaller_asks() {
        let mut memory = Memory::default();
        assert!(!memory.held());
        let small = memory.blocks(3).unwrap().as_ptr();
        let big = memory.blocks(DEFAULT_BLOCKS).unwrap();
        assert_eq!(big.len(), DEFAULT_BLOCKS);
        big[DEFAULT_BLOCKS - 1].as_mut()[0] = 7;
        let big = big.as_ptr();
        assert_ne!(small, big, "a bigger ask gets a new buffer");
        let again = memory.blocks(10).unwrap();
        assert_eq!(again.len(), 10);
        assert_eq!(again.as_ptr(), big, "a smaller ask keeps the buffer");
        let all = memory.blocks(DEFAULT_BLOCKS).unwrap();
        assert_eq!(all[DEFAULT_BLOCKS - 1].as_ref()[0], 7, "and what it holds");
        memory = Memory::default();
        assert!(!memory.held());
    }

    #[test]
    fn memory_that_cannot_be_had_is_none_not_an_abort() {
        let mut memory = Memory::default();
        assert!(memory.blocks(usize::MAX / 2048).is_none());
        assert!(memory.blocks(4).is_some(), "and the next ask is served");
    }

    /// A worker keeps its memory for the next job waiting, and lets it go
    /// once it had nothing to do for [`LINGER`].
    #[test]
    fn an_idle_worker_gives_its_memory_back() {
        let pool = Pool::start(1, 4).unwrap();
        let submit = |job: Box<dyn FnOnce(&mut Memory) -> bool + Send>| {
            let (tx, rx) = mpsc::channel();
            pool.submit(Box::new(move |memory| {
                let _ = tx.send(job(memory));
            }))
            .unwrap();
            rx
        };
        let wait = |rx: mpsc::Receiver<bool>| rx.recv_timeout(Duration::from_secs(10)).unwrap();
        // The second job is queued before the first ends: no idle moment.
        let (go, gate) = mpsc::channel::<()>();
        let first = submit(Box::new(move |m| {
            let _ = gate.recv_timeout(Duration::from_secs(10));
            m.blocks(DEFAULT_BLOCKS).is_some()
        }));
        let second = submit(Box::new(|m| m.held()));
        go.send(()).unwrap();
        assert!(wait(first));
        assert!(wait(second), "kept for the job waiting");
        // Quiet for longer than LINGER (polled: a busy machine may be slow
        // to run the low-priority worker).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            std::thread::sleep(LINGER * 4);
            if !wait(submit(Box::new(|m| m.held()))) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "never given back");
        }
    }

    /// The mapping starts on a 2 MiB boundary and is advised for huge
    /// pages (`hg` among its `VmFlags`) wherever the process may have them.
    /// Whether the kernel has a free huge page to give is its own business.
    #[cfg(target_os = "linux")]
    #[test]
    fn memory_is_mapped_for_huge_pages() {
        let mut memory = Memory::default();
        let start = memory.blocks(DEFAULT_BLOCKS).unwrap().as_ptr() as usize;
        assert_eq!(start % (2 << 20), 0);
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        if status
            .lines()
            .any(|l| l.replace(' ', "") == "THP_enabled:\t0")
        {
            return;
        }
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut lines = smaps.lines();
        let mut flags = None;
        while let Some(line) = lines.next() {
            let Some((from, to)) = line
                .split_whitespace()
                .next()
                .and_then(|range| range.split_once('-'))
                .and_then(|(a, b)| {
                    Some((
                        usize::from_str_radix(a, 16).ok()?,
                        usize::from_str_radix(b, 16).ok()?,
                    ))
                })
            else {
                continue;
            };
            if (from..to).contains(&start) {
                flags = lines
                    .by_ref()
                    .find_map(|l| l.strip_prefix("VmFlags:"))
                    .map(|v| v.split_whitespace().map(str::to_owned).collect::<Vec<_>>());
                break;
            }
        }
        let flags = flags.expect("the mapping is listed with its flags");
        assert!(flags.iter().any(|f| f == "hg"), "{flags:?}");
    }
}
