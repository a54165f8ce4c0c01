//! What `eddy bench` prints and draws: a table per workload, the ratios across workloads, the
//! SVG bar chart.

use super::measure::WorkloadResult;
use super::settings::{CHECKPOINT_EVERY, SEED_EVENTS};
use super::timing::{Verdict, ROUNDS};

pub fn print_workload(result: &WorkloadResult) {
    println!("{} ({} events)", result.workload, result.events);
    println!(
        "  {:<52} {:>14} {:>9} {:>11} {:>10}  checksum",
        "variant", "events/s", "seconds", "runs/round", "peak MiB"
    );
    for m in &result.variants {
        let peak = m.peak_mib.map_or("-".to_string(), |p| format!("{p:.0}"));
        println!(
            "  {:<52} {:>14} {:>9.3} {:>11} {:>10}  {}",
            m.variant,
            thousands(m.events_per_s),
            m.seconds,
            m.runs_per_round,
            peak,
            m.checksum
        );
    }
    println!(
        "  simulator: {:.0} seeds/s ({} events, a checkpoint every {} records)",
        result.sim_seeds_per_s, SEED_EVENTS, CHECKPOINT_EVERY
    );
    for m in &result.variants {
        if let Some(checkpoints) = m.checkpoints {
            println!(
                "  {}: {} checkpoints completed per run",
                m.variant,
                thousands(checkpoints as f64)
            );
        }
    }
    let state = &result.state;
    println!(
        "  state: largest of {} checkpoints {} bytes, {} keyed entries, {} bytes per entry",
        state.checkpoints,
        thousands(state.checkpoint_bytes as f64),
        thousands(state.keyed_entries as f64),
        state.bytes_per_entry.map_or("-".to_string(), |b| format!("{b:.1}"))
    );
    if result.checksums_agree {
        println!("  checksums: all variants agree");
    } else {
        println!("  checksums: MISMATCH, the variants differ");
    }
    match result.shortcuts_agree {
        Some(true) => println!(
            "  shortcuts (at once): not like for like, left out of the ratios and the agreement; \
             their checksums equal the others' on this input (every id's clicks arrive in timestamp order)"
        ),
        Some(false) => println!(
            "  shortcuts (at once): not like for like, left out of the ratios and the agreement; \
             their checksums differ, as they may where input is out of order"
        ),
        None => {}
    }
}

/// The ratios of every workload, each as its median round `[middle half of the rounds]`, then
/// each goal's verdict: met, missed, or unclear where the spread straddles the goal.
pub fn print_ratios(results: &[WorkloadResult]) {
    println!();
    println!(
        "ratios over {ROUNDS} interleaved rounds: median [middle half]; a goal is met only when the whole middle half is at or above it"
    );
    let names: Vec<&str> =
        results
            .iter()
            .flat_map(|r| r.ratios.iter().map(|x| x.name))
            .fold(Vec::new(), |mut names, name| {
                if !names.contains(&name) {
                    names.push(name);
                }
                names
            });
    print!("{:<16}", "workload");
    for name in &names {
        print!(" {name:>22}");
    }
    println!(" {:>12} {:>14}", "sim seeds/s", "state B/entry");
    for r in results {
        print!("{:<16}", r.workload);
        for name in &names {
            let cell = r.ratios.iter().find(|x| x.name == *name).map_or("-".to_string(), |x| {
                format!("{:.2} [{:.2}-{:.2}]", x.median, x.low, x.high)
            });
            print!(" {cell:>22}");
        }
        let per_entry = r.state.bytes_per_entry.map_or("-".to_string(), |b| format!("{b:.1}"));
        println!(" {:>12.0} {:>14}", r.sim_seeds_per_s, per_entry);
    }
    let mut tally = [0usize; 3];
    for r in results {
        for x in &r.ratios {
            let (Some(goal), Some(verdict)) = (x.goal, x.verdict) else {
                continue;
            };
            tally[verdict as usize] += 1;
            let (low, high, median, name, workload) = (x.low, x.high, x.median, x.name, r.workload);
            match verdict {
                Verdict::Met => {}
                Verdict::Missed => println!("MISSED: {workload} {name} {median:.2} [{low:.2}-{high:.2}], goal >= {goal}"),
                Verdict::Unclear => println!(
                    "UNCLEAR: {workload} {name} {median:.2} [{low:.2}-{high:.2}] straddles its goal {goal}: this run cannot tell (a busy machine?)"
                ),
            }
        }
    }
    println!("goals: {} met, {} missed, {} unclear", tally[0], tally[1], tally[2]);
}

/// `12,345,678`: whole events per second with thousands separators.
pub fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A grouped bar chart of events/s: one group per workload, one bar per variant.
pub fn plot(results: &[WorkloadResult]) -> String {
    const COLOURS: [&str; 6] = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"];
    let max = results
        .iter()
        .flat_map(|r| r.variants.iter().map(|m| m.events_per_s))
        .fold(1.0, f64::max);
    let (bar, gap, height, top, left) = (28.0, 30.0, 300.0, 40.0, 70.0);
    // The legend lists the variants of the workload with the most (shortcuts come last).
    let widest = results.iter().max_by_key(|r| r.variants.len());
    let variants = widest.map_or(0, |r| r.variants.len());
    let group = bar * variants as f64 + gap;
    let width = left + group * results.len() as f64 + 260.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{:.0}\" font-family=\"sans-serif\" font-size=\"12\">\n",
        top + height + 60.0
    );
    svg +=
        &format!("<text x=\"{left}\" y=\"20\" font-size=\"14\">eddy bench: million events/s (single thread)</text>\n");
    for step in 0..=4 {
        let value = max * f64::from(step) / 4.0;
        let y = top + height - height * f64::from(step) / 4.0;
        svg += &format!(
            "<line x1=\"{left}\" x2=\"{:.0}\" y1=\"{y:.0}\" y2=\"{y:.0}\" stroke=\"#ddd\"/><text x=\"{:.0}\" y=\"{:.0}\" text-anchor=\"end\">{:.1}</text>\n",
            left + group * results.len() as f64,
            left - 6.0,
            y + 4.0,
            value / 1e6
        );
    }
    for (g, result) in results.iter().enumerate() {
        let x0 = left + gap / 2.0 + group * g as f64;
        for (v, m) in result.variants.iter().enumerate() {
            let h = height * m.events_per_s / max;
            svg += &format!(
                "<rect x=\"{:.0}\" y=\"{:.0}\" width=\"{:.0}\" height=\"{h:.0}\" fill=\"{}\"/>\n",
                x0 + bar * v as f64,
                top + height - h,
                bar - 2.0,
                COLOURS[v % COLOURS.len()]
            );
        }
        svg += &format!(
            "<text x=\"{:.0}\" y=\"{:.0}\" text-anchor=\"middle\">{}</text>\n",
            x0 + bar * variants as f64 / 2.0,
            top + height + 18.0,
            result.workload
        );
    }
    if let Some(widest) = widest {
        for (v, m) in widest.variants.iter().enumerate() {
            let y = top + 10.0 + 18.0 * v as f64;
            let x = left + group * results.len() as f64 + 20.0;
            svg += &format!(
                "<rect x=\"{x:.0}\" y=\"{:.0}\" width=\"12\" height=\"12\" fill=\"{}\"/><text x=\"{:.0}\" y=\"{y:.0}\">{}</text>\n",
                y - 10.0,
                COLOURS[v % COLOURS.len()],
                x + 18.0,
                m.variant
            );
        }
    }
    svg + "</svg>\n"
}
