use pmf::runtime::value::Completeness;
fn main() {
    let policy = pmf::cli::policy::load(&["examples/fleet/policy.pmf".into()]).ok().unwrap();
    let text = std::fs::read_to_string("/work/bench/p1m.ndjson").unwrap();
    let lines: Vec<&str> = text.lines().take(300_000).collect();
    let cache = Default::default();
    let t = std::time::Instant::now();
    let mut n = 0;
    for l in &lines { let v = pmf::runtime::fast::parse(l, &policy.schema, Completeness::Full, &cache).unwrap(); if matches!(v, pmf::runtime::value::Value::Missing) { n += 1 } }
    println!("parse {:?} {n}", t.elapsed());
}
