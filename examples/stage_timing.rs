use pmf::runtime::value::Completeness;
use std::time::Instant;
fn main() {
    let policy = pmf::cli::policy::load(&["examples/fleet/policy.pmf".into()])
        .ok()
        .unwrap();
    let text = std::fs::read_to_string("/work/bench/p1m.ndjson").unwrap();
    let lines: Vec<&str> = text.lines().take(200_000).collect();
    let t = Instant::now();
    let mut parsed = Vec::with_capacity(lines.len());
    let cache = pmf::runtime::fast::ParseCache::new(&policy.schema);
    for l in &lines {
        parsed.push(pmf::runtime::fast::parse(l, Completeness::Full, &cache).unwrap());
    }
    println!("parse {:?}", t.elapsed());
    let target = pmf::runtime::value::from_json(
        &policy.schema,
        &serde_json::json!({"version":"1.6.0"}),
        "",
        Completeness::Partial,
    )
    .unwrap();
    let mut n = 0;
    let mut best = std::time::Duration::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        for p in &parsed {
            let tg = pmf::runtime::plan::target_state(p, Some(&target));
            let a = policy.assess(p, &tg, &tg);
            n += a.categories.len();
        }
        best = best.min(t.elapsed());
    }
    println!("overlay+assess {:?} {n}", best);
    let t = Instant::now();
    for p in &parsed {
        let tg = pmf::runtime::plan::target_state(p, Some(&target));
        if matches!(tg, pmf::runtime::value::Value::Missing) {
            n += 1
        }
    }
    println!("overlay {:?}", t.elapsed());
    let t = Instant::now();
    for p in &parsed {
        n += pmf::runtime::plan::state_digest(&policy, p).len();
    }
    println!("digest {:?} {n}", t.elapsed());
    let t = Instant::now();
    let mut buf = String::new();
    for p in &parsed {
        buf.clear();
        p.write_canonical(&policy.schema, &mut buf);
        n += buf.len();
    }
    println!("canonical {:?} {n}", t.elapsed());
    use sha2::Digest;
    let t = Instant::now();
    for _ in &parsed {
        n += sha2::Sha256::digest(buf.as_bytes())[0] as usize;
    }
    println!("sha {:?} {n} {}", t.elapsed(), buf.len());
    let t = Instant::now();
    drop(parsed);
    println!("drop {:?}", t.elapsed());
}
#[allow(dead_code)]
fn unused() {}
