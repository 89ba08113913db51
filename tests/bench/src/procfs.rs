//! Readings from `/proc`: a process's memory, its CPU by thread group and the bytes it
//! has written, and the machine's CPU (busy, and stolen by the hypervisor).

use crate::floors::Floors;
use std::collections::HashMap;

/// `VmHWM` (peak) and `VmRSS` of a process, in bytes.
pub fn rss(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .unwrap_or(0)
    };
    Ok((field("VmHWM:"), field("VmRSS:")))
}

/// Seconds of CPU (user and system) of a `/proc/<pid>/stat`-shaped line; `/proc` counts
/// in USER_HZ, 100 per second on Linux.
fn stat_cpu_seconds(stat: &str) -> Option<f64> {
    // Fields after the command name (which may hold spaces): state is the first,
    // utime the 12th and stime the 13th.
    let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// CPU seconds this process has used so far, its exited threads included (10 ms
/// resolution).
pub fn own_cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat").ok().and_then(|s| stat_cpu_seconds(&s)).unwrap_or(0.0)
}

/// Where a process's CPU went: its threads' CPU seconds by name prefix (the first
/// prefix a thread's name starts with), "other" for the rest of the process, exited
/// threads included.
fn cpu_by_thread(pid: &str, prefixes: &[&'static str]) -> HashMap<&'static str, f64> {
    let mut out: HashMap<&'static str, f64> = HashMap::new();
    let total = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|s| stat_cpu_seconds(&s)).unwrap_or(0.0);
    let mut named = 0.0;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            let Some(group) = prefixes.iter().find(|p| comm.starts_with(**p)) else { continue };
            let cpu = std::fs::read_to_string(t.path().join("stat")).ok().and_then(|s| stat_cpu_seconds(&s)).unwrap_or(0.0);
            *out.entry(group).or_default() += cpu;
            named += cpu;
        }
    }
    out.insert("other", (total - named).max(0.0));
    out
}

/// CPU seconds of the machine so far (`/proc/stat`): busy (running something here),
/// stolen (the hypervisor ran another guest on this machine's CPUs while it wanted
/// them), and in all.
#[derive(Clone, Copy)]
pub struct MachineCpu {
    busy: f64,
    steal: f64,
    total: f64,
}

impl MachineCpu {
    pub fn now() -> Self {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let ticks: Vec<u64> = stat.lines().next().unwrap_or_default().split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
        let at = |i: usize| ticks.get(i).copied().unwrap_or(0) as f64 / 100.0;
        let total: f64 = (0..8).map(at).sum();
        // idle and iowait are the 4th and 5th, steal the 8th.
        MachineCpu { busy: total - at(3) - at(4) - at(7), steal: at(7), total }
    }

    /// Percentages busy and stolen from `before` to this reading.
    pub fn since(&self, before: &MachineCpu) -> (f64, f64) {
        let total = (self.total - before.total).max(0.01);
        (100.0 * (self.busy - before.busy) / total, 100.0 * (self.steal - before.steal) / total)
    }
}

/// Thread groups of local mode, as its threads are named.
const LOCAL_THREADS: [&str; 3] = ["hookline-sign", "hookline-db-wri", "hookline-db-che"];

/// CPU of local mode, of this process (the bench's publishers and receiver) and of the
/// machine, at one moment.
pub struct CpuSnapshot {
    local: HashMap<&'static str, f64>,
    bench: f64,
    machine: MachineCpu,
    /// Bytes local mode has passed to `write` and the like (`wchar` of `/proc/<pid>/io`):
    /// the WAL, checkpoints into the database file, its log.
    written: u64,
}

impl CpuSnapshot {
    pub fn take(pid: u32) -> Self {
        let bench = cpu_by_thread("self", &[]).values().sum();
        let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
        let written = io.lines().find_map(|l| l.strip_prefix("wchar:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
        CpuSnapshot { local: cpu_by_thread(&pid.to_string(), &LOCAL_THREADS), bench, machine: MachineCpu::now(), written }
    }

    /// Milliseconds of CPU per delivery, by part, from `before` to this snapshot.
    pub fn per_delivery(&self, before: &CpuSnapshot, deliveries: u64, floors: &Floors, exchanges: f64) -> String {
        let n = deliveries.max(1) as f64;
        let local = |k: &str| 1000.0 * (self.local.get(k).unwrap_or(&0.0) - before.local.get(k).unwrap_or(&0.0)) / n;
        let bench = 1000.0 * (self.bench - before.bench) / n;
        let total = LOCAL_THREADS.iter().chain(&["other"]).map(|k| local(k)).sum::<f64>() + bench;
        let (busy, steal) = self.machine.since(&before.machine);
        format!(
            "CPU per delivery: signing threads {:.3} ms (the floor's signature: {:.3} ms), database writer {:.3}, checkpointer {:.3}, \
             the rest of local mode (API, fan-out, send loop, HTTP, database reads) {:.3}; the bench's publishers and receiver {:.3}; \
             in all {total:.3} ms, of which {:.3} beyond the floors' signature and {exchanges} keep-alive exchange(s); \
             the machine {:.0} % busy, {:.0} % stolen by the hypervisor; local mode wrote {:.1} KiB per delivery (WAL, checkpoints, log)",
            local("hookline-sign"),
            floors.signature_ms(),
            local("hookline-db-wri"),
            local("hookline-db-che"),
            local("other"),
            bench,
            total - floors.signature_ms() - exchanges * floors.exchange_ms(),
            busy,
            steal,
            (self.written - before.written) as f64 / n / 1024.0,
        )
    }
}
