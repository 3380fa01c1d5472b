//! The language server over its real transport: spawn `pmf lsp`, speak
//! JSON-RPC with `Content-Length` framing over its stdio, and check
//! diagnostics, hover, definition, references, completion, symbols, code
//! actions, UTF-16 and UTF-8 positions, a long run of random edits, and a
//! clean shutdown. Every read has a timeout: a hung server fails the test.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long any single message may take.
const TIMEOUT: Duration = Duration::from_secs(30);

const BASE: &str = "policy base extends kwanus

authority QA \"Quality Assurance\" governs quality
category quality \"Quality\" covers power
";

/// Two errors: PMF103 on `QAA` (once: not again as PMF404 for the category
/// `QAA` was meant to approve), PMF106 on `powr` (after a
/// comment with characters outside ASCII, one of them outside the BMP).
const CHILD: &str = "policy child extends base

migration restore \"Restore\" {
  to previous_stable
  touches quality
  approve by QAA
}

compatibility {
  /* ñandú → 𝄞 */ power_kept: target.powr <= partner.power else restrict
}
";

/// A JSON-RPC client of a `pmf lsp` process.
struct Client {
    child: Child,
    stdin: ChildStdin,
    incoming: Receiver<Value>,
    /// Notifications read while waiting for something else.
    backlog: VecDeque<Value>,
    next_id: i64,
    /// Everything the server wrote to stderr.
    stderr: Arc<Mutex<String>>,
}

fn read_message(reader: &mut impl BufRead) -> Option<Value> {
    let mut length = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("Content-Length: ") {
            length = v.parse::<usize>().ok();
        }
    }
    let mut body = vec![0; length?];
    reader.read_exact(&mut body).ok()?;
    match serde_json::from_slice(&body) {
        Ok(v) => Some(v),
        Err(e) => panic!(
            "malformed message from the server: {e}: {}",
            String::from_utf8_lossy(&body)
        ),
    }
}

impl Client {
    /// Spawn `pmf lsp` in `dir`.
    fn spawn(dir: &Path) -> Client {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pmf"))
            .arg("lsp")
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn pmf lsp");
        let stdin = child.stdin.take().expect("stdin");
        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(mut err) = child.stderr.take() {
            let sink = stderr.clone();
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = std::io::Read::read_to_string(&mut err, &mut text);
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&text);
                }
            });
        }
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            while let Some(msg) = read_message(&mut reader) {
                if tx.send(msg).is_err() {
                    break;
                }
            }
        });
        Client {
            child,
            stdin,
            incoming: rx,
            backlog: VecDeque::new(),
            next_id: 1,
            stderr,
        }
    }

    /// Spawn and initialize with `capabilities`, the workspace being `dir`.
    fn start(dir: &Path, capabilities: Value) -> (Client, Value) {
        let mut c = Client::spawn(dir);
        let result = c.request(
            "initialize",
            json!({
                "processId": null,
                "rootUri": uri(dir, ""),
                "capabilities": capabilities,
            }),
        );
        c.notify("initialized", json!({}));
        (c, result)
    }

    fn send(&mut self, msg: Value) {
        let body = msg.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).expect("write");
        self.stdin.flush().expect("flush");
    }

    fn recv(&mut self) -> Value {
        match self.incoming.recv_timeout(TIMEOUT) {
            Ok(v) => v,
            Err(RecvTimeoutError::Timeout) => panic!("the server did not answer in time"),
            Err(RecvTimeoutError::Disconnected) => panic!("the server closed its output"),
        }
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Send a request and return the whole response message.
    fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let msg = self.recv();
            if msg.get("id") == Some(&json!(id)) && msg.get("method").is_none() {
                assert_eq!(msg["jsonrpc"], "2.0", "{msg}");
                return msg;
            }
            self.backlog.push_back(msg);
        }
    }

    /// Send a request and return its result (panics on an error response).
    fn request(&mut self, method: &str, params: Value) -> Value {
        let msg = self.call(method, params);
        assert!(msg.get("error").is_none(), "{method} failed: {msg}");
        msg["result"].clone()
    }

    /// The next `publishDiagnostics` for `uri`.
    fn diagnostics(&mut self, uri: &str) -> Value {
        let is_for = |m: &Value| {
            m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri
        };
        if let Some(i) = self.backlog.iter().position(is_for) {
            return self
                .backlog
                .remove(i)
                .map(|m| m["params"].clone())
                .unwrap_or_default();
        }
        loop {
            let msg = self.recv();
            if is_for(&msg) {
                return msg["params"].clone();
            }
            self.backlog.push_back(msg);
        }
    }

    fn open(&mut self, uri: &str, text: &str) {
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": "pmf", "version": 1, "text": text}}),
        );
    }

    /// `shutdown`, `exit`, and the exit status; the server must not have
    /// reported an internal error (a caught panic) on stderr.
    fn shutdown(mut self) -> ExitStatus {
        let result = self.request("shutdown", Value::Null);
        assert_eq!(result, Value::Null);
        self.notify("exit", Value::Null);
        let status = self.wait();
        // The stderr reader ends with the process.
        std::thread::sleep(Duration::from_millis(50));
        let stderr = self.stderr.lock().map(|s| s.clone()).unwrap_or_default();
        assert!(!stderr.contains("internal error"), "{stderr}");
        status
    }

    fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "the server did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `file://` URI of `name` in `dir` (`name` empty: the directory).
fn uri(dir: &Path, name: &str) -> String {
    let path = if name.is_empty() {
        dir.to_path_buf()
    } else {
        dir.join(name)
    };
    format!("file://{}", path.display())
}

/// A workspace with `base.pmf` and `child.pmf` on disk.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("base.pmf"), BASE).expect("write base");
    std::fs::write(dir.path().join("child.pmf"), CHILD).expect("write child");
    dir
}

/// The 0-based line and UTF-16 column of byte `offset` in `text`.
fn utf16_position(text: &str, offset: usize) -> (u64, u64) {
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = text[..offset].matches('\n').count();
    let col = text[line_start..offset].encode_utf16().count();
    (line as u64, col as u64)
}

/// An LSP position (UTF-16) of the `nth` occurrence of `needle`, `delta`
/// bytes in.
fn pos(text: &str, needle: &str, nth: usize, delta: usize) -> Value {
    let offset = text
        .match_indices(needle)
        .nth(nth)
        .map(|(i, _)| i + delta)
        .unwrap_or_else(|| panic!("`{needle}` not found"));
    let (line, character) = utf16_position(text, offset);
    json!({"line": line, "character": character})
}

fn range(sl: u64, sc: u64, el: u64, ec: u64) -> Value {
    json!({"start": {"line": sl, "character": sc}, "end": {"line": el, "character": ec}})
}

fn codes_and_ranges(diags: &Value) -> Vec<(String, Value)> {
    diags
        .as_array()
        .expect("diagnostics array")
        .iter()
        .map(|d| {
            (
                d["code"].as_str().unwrap_or_default().to_string(),
                d["range"].clone(),
            )
        })
        .collect()
}

fn markdown(hover: &Value) -> String {
    hover["contents"]["value"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn labels(items: &Value) -> Vec<String> {
    let list = items
        .get("items")
        .unwrap_or(items)
        .as_array()
        .cloned()
        .unwrap_or_default();
    list.iter()
        .filter_map(|i| i["label"].as_str().map(String::from))
        .collect()
}

#[test]
fn diagnostics_in_utf16_then_cleared() {
    let dir = workspace();
    let (mut c, init) = Client::start(dir.path(), json!({}));
    assert_eq!(init["capabilities"]["positionEncoding"], "utf-16");
    assert_eq!(init["capabilities"]["documentFormattingProvider"], true);
    let child = uri(dir.path(), "child.pmf");
    c.open(&child, CHILD);
    let published = c.diagnostics(&child);
    assert_eq!(published["version"], 1);
    let diags = &published["diagnostics"];
    // The column of `powr` counts `𝄞` as two UTF-16 code units.
    assert_eq!(
        codes_and_ranges(diags),
        vec![
            ("PMF103".to_string(), range(5, 13, 5, 16)),
            ("PMF106".to_string(), range(9, 38, 9, 42)),
        ]
    );
    let powr = CHILD.find("powr").unwrap_or_default();
    assert_eq!(utf16_position(CHILD, powr), (9, 38));
    let d = &diags[1];
    assert_eq!(d["severity"], 1);
    assert_eq!(d["source"], "pmf");
    assert_eq!(
        d["message"],
        "unknown field `powr` in `target`\nhelp: did you mean `power`?"
    );
    assert_eq!(
        diags[0]["message"],
        "unknown authority `QAA`\nhelp: did you mean `QA`?"
    );

    // A change that fixes both: `QAA` → `QA`, `powr` → `power`.
    c.notify(
        "textDocument/didChange",
        json!({
            "textDocument": {"uri": child, "version": 2},
            "contentChanges": [
                {"range": range(9, 38, 9, 42), "text": "power"},
                {"range": range(5, 13, 5, 16), "text": "QA"},
            ],
        }),
    );
    let published = c.diagnostics(&child);
    assert_eq!(published["version"], 2);
    assert_eq!(published["diagnostics"], json!([]));
    // The server's text is the fixed text: no diagnostics after a save either.
    c.notify(
        "textDocument/didSave",
        json!({"textDocument": {"uri": child}}),
    );
    assert_eq!(c.diagnostics(&child)["diagnostics"], json!([]));
    // Closing clears nothing more (nothing was left) and the server lives on.
    c.notify(
        "textDocument/didClose",
        json!({"textDocument": {"uri": child}}),
    );
    let unknown = c.call("pmf/noSuchRequest", json!({}));
    assert_eq!(unknown["error"]["code"], -32601, "{unknown}");
    assert!(c.shutdown().success());
}

#[test]
fn utf8_positions_when_offered() {
    let dir = workspace();
    let caps = json!({"general": {"positionEncodings": ["utf-8", "utf-16"]}});
    let (mut c, init) = Client::start(dir.path(), caps);
    assert_eq!(init["capabilities"]["positionEncoding"], "utf-8");
    let child = uri(dir.path(), "child.pmf");
    c.open(&child, CHILD);
    let diags = c.diagnostics(&child)["diagnostics"].clone();
    // In bytes: `ñ`, `ú` are 2, `→` 3 and `𝄞` 4.
    let powr = CHILD.find("powr").unwrap_or_default();
    let line_start = CHILD[..powr].rfind('\n').map_or(0, |i| i + 1);
    assert_eq!(powr - line_start, 44);
    assert_eq!(
        codes_and_ranges(&diags)[1],
        ("PMF106".to_string(), range(9, 44, 9, 48))
    );
    // Requests take UTF-8 positions too: hover on `powr` shows PMF106's page.
    let hover = c.request(
        "textDocument/hover",
        json!({"textDocument": {"uri": child}, "position": {"line": 9, "character": 45}}),
    );
    assert!(markdown(&hover).contains("PMF106"), "{hover}");
    assert_eq!(hover["range"], range(9, 44, 9, 48));
    assert!(c.shutdown().success());
}

#[test]
fn hover_definition_references_completion_symbols_actions() {
    let dir = workspace();
    let (mut c, _) = Client::start(dir.path(), json!({}));
    let child = uri(dir.path(), "child.pmf");
    let base = uri(dir.path(), "base.pmf");
    c.open(&child, CHILD);
    let _ = c.diagnostics(&child);
    let at = |needle: &str, nth: usize, delta: usize| json!({"textDocument": {"uri": child}, "position": pos(CHILD, needle, nth, delta)});

    // Hover: a keyword, a field with its type and origin, a code.
    let h = c.request("textDocument/hover", at("migration", 0, 2));
    assert!(markdown(&h).contains("A migration type"), "{h}");
    let h = c.request("textDocument/hover", at("partner.power", 0, 9));
    let text = markdown(&h);
    assert!(text.contains("**field** `power`: `number`"), "{text}");
    assert!(text.contains("standard library"), "{text}");
    let h = c.request("textDocument/hover", at("powr", 0, 1));
    let text = markdown(&h);
    assert!(text.starts_with("# PMF106"), "{text}");
    let h = c.request("textDocument/hover", at("quality", 0, 1));
    let text = markdown(&h);
    assert!(text.contains("**category** `quality` — Quality"), "{text}");
    assert!(text.contains("governed by `QA`"), "{text}");
    assert!(text.contains("`base.pmf`"), "{text}");
    let h = c.request("textDocument/hover", at("restrict", 0, 1));
    assert!(markdown(&h).contains("restricted"), "{h}");
    // A policy's words are text in a hover: no tag, no link.
    let hostile = uri(dir.path(), "hostile.pmf");
    let text = "policy hostile extends kwanus\n\noverride rite detection \"<img src=x onerror=alert(1)> [run](command:x)\"\n";
    c.open(&hostile, text);
    let _ = c.diagnostics(&hostile);
    let h = c.request(
        "textDocument/hover",
        json!({"textDocument": {"uri": hostile}, "position": pos(text, "detection", 0, 2)}),
    );
    let shown = markdown(&h);
    assert!(
        shown.contains("&lt;img src=x onerror=alert\\(1\\)&gt; \\[run\\]\\(command:x\\)"),
        "{shown}"
    );

    // Definition: into a sibling file loaded from disk.
    let def = c.request("textDocument/definition", at("touches quality", 0, 9));
    assert_eq!(def["uri"], base);
    assert_eq!(def["range"], range(3, 9, 3, 16));
    let def = c.request("textDocument/definition", at("extends base", 0, 9));
    assert_eq!(def["uri"], base);
    assert_eq!(def["range"], range(0, 7, 0, 11));
    // ... and into the embedded stdlib.
    let def = c.request("textDocument/definition", at("partner.power", 0, 10));
    assert_eq!(def["uri"], "pmf-stdlib:///kwanus.pmf");
    let stdlib = pmf::stdlib::KWANUS_SOURCE;
    let power = stdlib.find("\n  power: number").unwrap_or_default() + 3;
    let (line, col) = utf16_position(stdlib, power);
    assert_eq!(def["range"], range(line, col, line, col + 5));
    // The stdlib document is served read-only.
    let content = c.request(
        "workspace/textDocumentContent",
        json!({"uri": "pmf-stdlib:///kwanus.pmf"}),
    );
    assert_eq!(content["text"], stdlib);
    // Nested record fields resolve too.
    let h = c.request(
        "textDocument/definition",
        json!({"textDocument": {"uri": "pmf-stdlib:///kwanus.pmf"},
               "position": pos(stdlib, "observed.metrics.stability", 0, 18)}),
    );
    assert_eq!(h["uri"], "pmf-stdlib:///kwanus.pmf");

    // References of category `quality`: declared in base, named in both.
    let refs = c.request(
        "textDocument/references",
        json!({"textDocument": {"uri": child}, "position": pos(CHILD, "touches quality", 0, 9),
               "context": {"includeDeclaration": true}}),
    );
    let mut found: Vec<(String, Value)> = refs
        .as_array()
        .expect("locations")
        .iter()
        .map(|l| {
            (
                l["uri"].as_str().unwrap_or_default().to_string(),
                l["range"].clone(),
            )
        })
        .collect();
    found.sort_by_key(|(u, r)| {
        let start = &r["start"];
        (
            u.clone(),
            start["line"].as_u64(),
            start["character"].as_u64(),
        )
    });
    assert_eq!(
        found,
        vec![
            (base.clone(), range(2, 41, 2, 48)),
            (base.clone(), range(3, 9, 3, 16)),
            (child.clone(), range(4, 10, 4, 17)),
        ]
    );
    let refs = c.request(
        "textDocument/references",
        json!({"textDocument": {"uri": child}, "position": pos(CHILD, "touches quality", 0, 9),
               "context": {"includeDeclaration": false}}),
    );
    assert_eq!(refs.as_array().map(Vec::len), Some(2), "{refs}");

    // Completion after `partner.` and after `else `.
    let edited = CHILD.replace("target.powr <= partner.power else restrict", "partner.");
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": child, "version": 2},
               "contentChanges": [{"text": edited}]}),
    );
    let items = c.request(
        "textDocument/completion",
        json!({"textDocument": {"uri": child}, "position": pos(&edited, "partner.\n", 0, 8)}),
    );
    let names = labels(&items);
    for f in ["power", "metrics", "version", "intelligence"] {
        assert!(names.contains(&f.to_string()), "{f} missing: {names:?}");
    }
    let edited = CHILD.replace("else restrict", "else ");
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": child, "version": 3},
               "contentChanges": [{"text": edited}]}),
    );
    let items = c.request(
        "textDocument/completion",
        json!({"textDocument": {"uri": child}, "position": pos(&edited, "else ", 0, 5)}),
    );
    assert_eq!(labels(&items), vec!["fallback", "restrict"]);
    let edited = CHILD.replace("partner.power else", "partner.metrics. else");
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": child, "version": 4},
               "contentChanges": [{"text": edited}]}),
    );
    let items = c.request(
        "textDocument/completion",
        json!({"textDocument": {"uri": child}, "position": pos(&edited, "metrics.", 0, 8)}),
    );
    let mut names = labels(&items);
    names.sort();
    assert_eq!(
        names,
        vec!["compatibility", "ecosystem", "stability", "sustainability"]
    );
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": child, "version": 5},
               "contentChanges": [{"text": CHILD}]}),
    );

    // Document symbols: the outline with children.
    let symbols = c.request(
        "textDocument/documentSymbol",
        json!({"textDocument": {"uri": child}}),
    );
    let top: Vec<&str> = symbols
        .as_array()
        .expect("symbols")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(
        top,
        vec!["policy child", "migration restore", "compatibility"]
    );
    assert_eq!(symbols[2]["children"][0]["name"], "power_kept");
    assert_eq!(
        symbols[2]["children"][0]["selectionRange"],
        range(9, 19, 9, 29)
    );
    // A line added at the top moves every chunk: the outline (read from
    // the chunks' trees in stable places) moves with them.
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": child, "version": 6},
               "contentChanges": [{"range": range(0, 0, 0, 0), "text": "// moved\n"}]}),
    );
    let moved = c.request(
        "textDocument/documentSymbol",
        json!({"textDocument": {"uri": child}}),
    );
    let shifted = |r: &serde_json::Value| {
        let mut r = r.clone();
        for end in ["start", "end"] {
            r[end]["line"] = json!(r[end]["line"].as_u64().unwrap_or_default() + 1);
        }
        r
    };
    assert_eq!(moved.as_array().map(Vec::len), Some(3), "{moved}");
    for (before, after) in symbols
        .as_array()
        .unwrap()
        .iter()
        .zip(moved.as_array().unwrap())
    {
        assert_eq!(after["name"], before["name"]);
        assert_eq!(after["range"], shifted(&before["range"]));
        assert_eq!(after["selectionRange"], shifted(&before["selectionRange"]));
    }
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": child, "version": 7},
               "contentChanges": [{"text": CHILD}]}),
    );

    // A quick fix for the did-you-mean of `QAA`.
    let actions = c.request(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": child}, "range": range(5, 14, 5, 14),
               "context": {"diagnostics": []}}),
    );
    let actions = actions.as_array().expect("actions");
    assert_eq!(actions.len(), 1, "{actions:?}");
    assert_eq!(actions[0]["kind"], "quickfix");
    assert_eq!(actions[0]["title"], "Replace with `QA`");
    assert_eq!(
        actions[0]["edit"]["changes"][child.as_str()],
        json!([{"range": range(5, 13, 5, 16), "newText": "QA"}])
    );
    assert!(c.shutdown().success());
}

/// A deterministic xorshift generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// The byte offset of a random character boundary of `text`.
fn boundary(rng: &mut Rng, text: &str) -> usize {
    let mut o = rng.below(text.len() + 1);
    while !text.is_char_boundary(o) {
        o -= 1;
    }
    o
}

fn is_well_formed_response(msg: &Value) -> bool {
    msg["jsonrpc"] == "2.0"
        && msg.get("id").is_some()
        && (msg.get("result").is_some()
            ^ msg
                .get("error")
                .is_some_and(|e| e["code"].is_i64() && e["message"].is_string()))
}

#[test]
fn random_edits_never_kill_the_server() {
    const EDITS: i64 = 1500;
    const SNIPPETS: &[&str] = &[
        "{",
        "}",
        "\"",
        "/*",
        "*/",
        "//",
        "\n",
        "partner.",
        "target.metrics.",
        " else ",
        "ñandú → 𝄞",
        "policy x\n",
        "override ",
        "flow f {\n  phase a\n  a -> b\n}\n",
        "((((((",
        "))))",
        "[[[[[[[[[[",
        "-> ",
        "approve by ",
        "\u{0}",
        "\r\n",
        "rite ",
        "\nkey TSC \"ed25519:00\" ",
        "migration m {\n  when 1 +\n}\n",
        "==",
        "not not not",
        "0.35",
        "1.2.3.4",
        "health {\n  band 0..=100 x -> proceed\n}\n",
        "\t",
        "é",
        ",",
        ":",
        "é.",
        "→,",
        "ñpartner.",
        "  approve by é,",
        "override",
        "\nrite ",
        "\n  ",
        "\noverride flow f {\n  a -> ",
        "\nmigration m {\n  ",
    ];
    let dir = workspace();
    let (mut c, _) = Client::start(dir.path(), json!({}));
    let child = uri(dir.path(), "child.pmf");
    let mut text = CHILD.to_string();
    c.open(&child, &text);
    let mut rng = Rng(0x5eed_1234_abcd_0042);
    for version in 2..EDITS {
        let start = boundary(&mut rng, &text);
        let (a, b) = if rng.below(3) == 0 {
            // Delete up to 20 bytes.
            let mut end = (start + rng.below(21)).min(text.len());
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            (start, end)
        } else {
            (start, start)
        };
        let insert = if a == b {
            SNIPPETS[rng.below(SNIPPETS.len())].to_string()
        } else {
            String::new()
        };
        let (sl, sc) = utf16_position(&text, a);
        let (el, ec) = utf16_position(&text, b);
        text.replace_range(a..b, &insert);
        c.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": child, "version": version},
                   "contentChanges": [{"range": range(sl, sc, el, ec), "text": insert}]}),
        );
        // Now and then, a request at a random place.
        if version % 3 == 0 {
            // Often just after the edit, where an editor asks.
            let at = if rng.below(2) == 0 {
                a + insert.len()
            } else {
                boundary(&mut rng, &text)
            };
            let (line, character) = utf16_position(&text, at);
            let position = json!({"line": line, "character": character});
            let method = [
                "textDocument/hover",
                "textDocument/completion",
                "textDocument/definition",
                "textDocument/references",
                "textDocument/documentSymbol",
                "textDocument/codeAction",
            ][rng.below(6)];
            let params = json!({
                "textDocument": {"uri": child},
                "position": position,
                "range": {"start": position, "end": position},
                "context": {"includeDeclaration": true, "diagnostics": []},
            });
            let response = c.call(method, params);
            assert!(is_well_formed_response(&response), "{method}: {response}");
            assert!(
                response.get("error").is_none(),
                "{method} at {at}: {response}\n{text}"
            );
        }
    }
    // Back to the original text: the server checks it as `pmf check` does.
    let (el, ec) = utf16_position(&text, text.len());
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": child, "version": EDITS},
               "contentChanges": [{"range": range(0, 0, el, ec), "text": CHILD}]}),
    );
    loop {
        let published = c.diagnostics(&child);
        if published["version"] == EDITS {
            let codes: Vec<String> = codes_and_ranges(&published["diagnostics"])
                .into_iter()
                .map(|(code, _)| code)
                .collect();
            assert_eq!(codes, vec!["PMF103", "PMF106"]);
            break;
        }
    }
    // Every message the server sent meanwhile is well formed.
    for msg in c.backlog.iter() {
        assert_eq!(msg["jsonrpc"], "2.0", "{msg}");
        assert!(
            msg.get("method").is_some() || is_well_formed_response(msg),
            "{msg}"
        );
    }
    assert!(c.shutdown().success());
}

#[test]
fn exit_without_shutdown_is_exit_code_1() {
    let dir = workspace();
    let (mut c, _) = Client::start(dir.path(), json!({}));
    c.notify("exit", Value::Null);
    assert_eq!(c.wait().code(), Some(1));
}

#[test]
fn editing_an_open_parent_republishes_its_open_child() {
    let dir = workspace();
    let (mut c, _) = Client::start(dir.path(), json!({}));
    let base = uri(dir.path(), "base.pmf");
    let child = uri(dir.path(), "child.pmf");
    let fixed = CHILD.replace("QAA", "QA").replace("powr", "power");
    c.open(&child, &fixed);
    assert_eq!(c.diagnostics(&child)["diagnostics"], json!([]));
    c.open(&base, BASE);
    assert_eq!(c.diagnostics(&base)["diagnostics"], json!([]));
    // The parent renames its authority: the child's `approve by QA` breaks.
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": base, "version": 2},
               "contentChanges": [{"range": range(2, 10, 2, 12), "text": "QB"}]}),
    );
    assert_eq!(c.diagnostics(&base)["diagnostics"], json!([]));
    let published = c.diagnostics(&child);
    assert_eq!(published["version"], 1);
    let diags = &published["diagnostics"];
    let codes: Vec<String> = codes_and_ranges(diags)
        .into_iter()
        .map(|(c, _)| c)
        .collect();
    assert!(codes.contains(&"PMF103".to_string()), "{diags}");
    let unknown = diags
        .as_array()
        .and_then(|l| l.iter().find(|d| d["code"] == "PMF103"))
        .cloned()
        .unwrap_or_default();
    let message = unknown["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("unknown authority `QA`\nhelp: known authorit"),
        "{message}"
    );
    assert_eq!(unknown["range"], range(5, 13, 5, 15));
    // Closing the parent goes back to its text on disk: the child is clean.
    c.notify(
        "textDocument/didClose",
        json!({"textDocument": {"uri": base}}),
    );
    assert_eq!(c.diagnostics(&child)["diagnostics"], json!([]));
    assert!(c.shutdown().success());
}

#[test]
fn a_burst_of_edits_is_checked_for_its_last_version() {
    let dir = workspace();
    let (mut c, _) = Client::start(dir.path(), json!({}));
    let child = uri(dir.path(), "child.pmf");
    c.open(&child, CHILD);
    let _ = c.diagnostics(&child);
    // 50 changes sent at once, each inserting a space at the start of the
    // last line: the server skips checking versions that are already stale.
    for version in 2..=51 {
        c.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": child, "version": version},
                   "contentChanges": [{"range": range(11, 0, 11, 0), "text": " "}]}),
        );
    }
    let mut versions = Vec::new();
    loop {
        let published = c.diagnostics(&child);
        let v = published["version"].as_i64().unwrap_or_default();
        versions.push(v);
        if v == 51 {
            assert_eq!(published["diagnostics"].as_array().map(Vec::len), Some(2));
            break;
        }
    }
    assert!(versions.len() < 45, "{versions:?}");
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
    assert!(c.shutdown().success());
}

#[test]
fn formatting_returns_the_canonical_layout() {
    let dir = workspace();
    let (mut c, init) = Client::start(dir.path(), json!({}));
    assert_eq!(init["capabilities"]["documentFormattingProvider"], true);
    let u = uri(dir.path(), "messy.pmf");
    let text = "policy messy   extends kwanus\n\n\n\noverride ceiling power<=7 // ñandú →\n";
    c.open(&u, text);
    let _ = c.diagnostics(&u);
    let edits = c.request(
        "textDocument/formatting",
        json!({"textDocument": {"uri": u}, "options": {"tabSize": 2, "insertSpaces": true}}),
    );
    let edits = edits.as_array().expect("edits");
    assert_eq!(edits.len(), 1);
    assert_eq!(edits[0]["newText"], pmf::fmt::format(text));
    assert_eq!(
        edits[0]["range"]["start"],
        json!({"line": 0, "character": 0})
    );
    // The end is just past the text (line 5, column 0 after the final newline).
    assert_eq!(edits[0]["range"]["end"], json!({"line": 5, "character": 0}));
    assert!(c.shutdown().success());
}

#[test]
fn pmf_toml_levels_apply_to_published_diagnostics() {
    let dir = workspace();
    std::fs::write(dir.path().join("pmf.toml"), "[lints]\nPMF902 = \"off\"\n").unwrap();
    let (mut c, _) = Client::start(dir.path(), json!({}));
    let u = uri(dir.path(), "idle.pmf");
    c.open(
        &u,
        "policy idle extends kwanus\n\nauthority IDLE \"Idle Board\"\n",
    );
    let published = c.diagnostics(&u);
    assert_eq!(published["diagnostics"], json!([]), "{published}");
    assert!(c.shutdown().success());
}

#[test]
fn file_watchers_are_registered_when_the_client_can() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut c, _) = Client::start(
        dir.path(),
        json!({"workspace": {"didChangeWatchedFiles": {"dynamicRegistration": true}}}),
    );
    let registration = loop {
        let msg = c.recv();
        if msg["method"] == "client/registerCapability" {
            break msg;
        }
    };
    let reg = &registration["params"]["registrations"][0];
    assert_eq!(
        reg["method"], "workspace/didChangeWatchedFiles",
        "{registration}"
    );
    assert_eq!(
        reg["registerOptions"]["watchers"][0]["globPattern"], "**/*.pmf",
        "{registration}"
    );
    assert_eq!(
        reg["registerOptions"]["watchers"][1]["globPattern"], "**/pmf.toml",
        "{registration}"
    );
    // The client answers; the server goes on.
    let id = registration["id"].clone();
    c.send(json!({"jsonrpc": "2.0", "id": id, "result": null}));
    // A parent written on disk (not open) reaches its open child.
    let child = uri(dir.path(), "child.pmf");
    c.open(&child, "policy child extends base\n");
    let first = c.diagnostics(&child);
    assert!(
        first["diagnostics"].to_string().contains("PMF"),
        "the parent is missing at first: {first}"
    );
    std::fs::write(dir.path().join("base.pmf"), BASE).unwrap();
    c.notify(
        "workspace/didChangeWatchedFiles",
        json!({"changes": [{"uri": uri(dir.path(), "base.pmf"), "type": 1}]}),
    );
    let after = c.diagnostics(&child);
    assert_eq!(after["diagnostics"], json!([]), "{after}");
    assert!(c.shutdown().success());
}

#[test]
fn a_request_cancelled_before_it_runs_is_answered_as_cancelled() {
    let dir = workspace();
    let (mut c, _) = Client::start(dir.path(), json!({}));
    let u = uri(dir.path(), "big.pmf");
    let mut text = String::from("policy big extends kwanus\n\n");
    for i in 0..20_000 {
        text.push_str(&format!(
            "override ceiling power<=   {}   // line {i}\n",
            i % 9
        ));
    }
    c.open(&u, &text);
    let _ = c.diagnostics(&u);
    // A slow request, then one the client gives up on while the first runs,
    // then one it still wants: all three queued at once.
    let doc = json!({"textDocument": {"uri": u}});
    let formatting =
        json!({"textDocument": {"uri": u}, "options": {"tabSize": 2, "insertSpaces": true}});
    c.send(json!({"jsonrpc": "2.0", "id": 9001, "method": "textDocument/formatting", "params": formatting}));
    c.send(json!({"jsonrpc": "2.0", "id": 9002, "method": "textDocument/documentSymbol", "params": doc}));
    c.send(json!({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 9002}}));
    c.send(json!({"jsonrpc": "2.0", "id": 9003, "method": "textDocument/documentSymbol", "params": doc}));
    let mut answers = std::collections::BTreeMap::new();
    while answers.len() < 3 {
        let msg = c.recv();
        if let Some(id) = msg.get("id").and_then(Value::as_i64)
            && msg.get("method").is_none()
        {
            answers.insert(id, msg);
        }
    }
    assert!(answers[&9001].get("result").is_some(), "formatting failed");
    assert_eq!(
        answers[&9002]["error"]["code"], -32800,
        "{}",
        answers[&9002]
    );
    assert!(answers[&9003]["result"].is_array(), "symbols failed");
    assert!(c.shutdown().success());
}

/// A policy with authority keys, over `base` (which declares `QA`).
const KEYED: &str = "policy keyed extends base

key QA \"ed25519:3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c\" \"Ada Lovelace, QA lead\"
key TSC \"ed25519:10d1a5bbb8f749687f48b01e84e73f3d41ad2d199fa91288a668cf19c163bf14\"
key QAA \"ed25519:140a7ec715083e4c98b2027f468c4cc6976c5d0b9ebd03b06f88698cc71740ef\"
";

#[test]
fn keys_hover_definition_references_completion_symbols() {
    let dir = workspace();
    let (mut c, _) = Client::start(dir.path(), json!({}));
    let keyed = uri(dir.path(), "keyed.pmf");
    let base = uri(dir.path(), "base.pmf");
    c.open(&keyed, KEYED);
    // `QAA` is no authority: PMF103 on the name, with a quick fix.
    let diags = c.diagnostics(&keyed)["diagnostics"].clone();
    assert_eq!(
        codes_and_ranges(&diags),
        vec![("PMF103".to_string(), range(4, 4, 4, 7))]
    );
    let actions = c.request(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": keyed}, "range": range(4, 5, 4, 5),
               "context": {"diagnostics": []}}),
    );
    assert_eq!(actions[0]["title"], "Replace with `QA`", "{actions}");
    let at = |needle: &str, nth: usize, delta: usize| json!({"textDocument": {"uri": keyed}, "position": pos(KEYED, needle, nth, delta)});

    // Hover on the key: authority, fingerprint, label and public key.
    let h = c.request("textDocument/hover", at("\"ed25519:3d40", 0, 5));
    let text = markdown(&h);
    assert!(
        text.starts_with("**key** of authority `QA` — Quality Assurance"),
        "{text}"
    );
    assert!(
        text.contains("fingerprint `ed25519:3d4017c3e843895a…`"),
        "{text}"
    );
    assert!(text.contains("held by Ada Lovelace, QA lead"), "{text}");
    assert!(
        text.contains(
            "public key `ed25519:3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c`"
        ),
        "{text}"
    );
    assert_eq!(h["range"], range(2, 7, 2, 81));
    // On its label: the same.
    let h = c.request("textDocument/hover", at("Ada Lovelace", 0, 4));
    assert!(markdown(&h).starts_with("**key** of authority `QA`"), "{h}");
    assert_eq!(h["range"], range(2, 82, 2, 105));
    // On the authority: its keys; on the keyword: its documentation.
    let h = c.request("textDocument/hover", at("key QA", 0, 5));
    let text = markdown(&h);
    assert!(text.starts_with("**authority** `QA`"), "{text}");
    assert!(
        text.contains("keys:\n- `ed25519:3d4017c3e843895a…` Ada Lovelace, QA lead"),
        "{text}"
    );
    let h = c.request("textDocument/hover", at("key TSC", 0, 1));
    assert!(markdown(&h).contains("trust root"), "{h}");

    // Definition: from the key's authority to the authority's declaration,
    // in a sibling file and in the stdlib.
    let def = c.request("textDocument/definition", at("key QA", 0, 5));
    assert_eq!(def["uri"], base);
    assert_eq!(def["range"], range(2, 10, 2, 12));
    let def = c.request("textDocument/definition", at("key TSC", 0, 5));
    assert_eq!(def["uri"], "pmf-stdlib:///kwanus.pmf");

    // References of `QA` include the key declaration.
    let refs = c.request(
        "textDocument/references",
        json!({"textDocument": {"uri": keyed}, "position": pos(KEYED, "key QA", 0, 5),
               "context": {"includeDeclaration": true}}),
    );
    let found: Vec<(String, Value)> = refs
        .as_array()
        .expect("locations")
        .iter()
        .map(|l| {
            (
                l["uri"].as_str().unwrap_or_default().to_string(),
                l["range"].clone(),
            )
        })
        .collect();
    assert!(
        found.contains(&(base.clone(), range(2, 10, 2, 12))),
        "{found:?}"
    );
    assert!(
        found.contains(&(keyed.clone(), range(2, 4, 2, 6))),
        "{found:?}"
    );

    // Completion: `key` in column 0 (not after `override`), and the
    // authorities after `key `.
    let edited = format!("{KEYED}\n");
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": keyed, "version": 2},
               "contentChanges": [{"text": edited}]}),
    );
    let end = pos(&edited, "\n\n", 0, 1);
    let end = json!({"line": end["line"].as_u64().unwrap_or_default() + 4, "character": 0});
    let items = c.request(
        "textDocument/completion",
        json!({"textDocument": {"uri": keyed}, "position": end}),
    );
    assert!(labels(&items).contains(&"key".to_string()), "{items}");
    let edited = format!("{KEYED}key \n");
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": keyed, "version": 3},
               "contentChanges": [{"text": edited}]}),
    );
    let items = c.request(
        "textDocument/completion",
        json!({"textDocument": {"uri": keyed}, "position": {"line": 5, "character": 4}}),
    );
    let mut names = labels(&items);
    names.sort();
    assert_eq!(names, vec!["ERC", "QA", "SCO", "TSC"]);
    let edited = format!("{KEYED}override \n");
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": keyed, "version": 4},
               "contentChanges": [{"text": edited}]}),
    );
    let items = c.request(
        "textDocument/completion",
        json!({"textDocument": {"uri": keyed}, "position": {"line": 5, "character": 9}}),
    );
    let names = labels(&items);
    assert!(names.contains(&"authority".to_string()), "{names:?}");
    assert!(!names.contains(&"key".to_string()), "{names:?}");
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": keyed, "version": 5},
               "contentChanges": [{"text": KEYED}]}),
    );

    // Document symbols: one per key, with its fingerprint and label.
    let symbols = c.request(
        "textDocument/documentSymbol",
        json!({"textDocument": {"uri": keyed}}),
    );
    let symbols = symbols.as_array().expect("symbols");
    let names: Vec<&str> = symbols.iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(names, vec!["policy keyed", "key QA", "key TSC", "key QAA"]);
    assert_eq!(
        symbols[1]["detail"],
        "ed25519:3d4017c3e843895a… · Ada Lovelace, QA lead"
    );
    assert_eq!(symbols[1]["kind"], 20, "SymbolKind::Key");
    assert_eq!(symbols[1]["selectionRange"], range(2, 7, 2, 81));
    assert_eq!(symbols[2]["detail"], "ed25519:10d1a5bbb8f74968…");
    assert!(c.shutdown().success());
}

/// A rite pasted with typographic quotes.
const SLIPS: &str = "policy slips extends base

rite detection \u{201C}The threads tremble.\u{201D}
";

#[test]
fn slips_have_quick_fixes_from_their_structured_fixes() {
    let dir = workspace();
    let (mut c, _) = Client::start(dir.path(), json!({}));
    let doc = uri(dir.path(), "slips.pmf");
    c.open(&doc, SLIPS);
    let diags = c.diagnostics(&doc)["diagnostics"].clone();
    assert_eq!(
        codes_and_ranges(&diags),
        vec![("PMF001".to_string(), range(2, 15, 2, 16))]
    );
    // The expectation is in the message the editor shows.
    let message = diags[0]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("expected `\"`, found `\u{201C}`"),
        "{message}"
    );
    assert!(
        message.contains("(U+201C, Left Double Quotation Mark)"),
        "{message}"
    );
    let actions = c.request(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": doc}, "range": range(2, 15, 2, 15),
               "context": {"diagnostics": []}}),
    );
    let actions = actions.as_array().expect("actions");
    assert_eq!(actions.len(), 1, "{actions:?}");
    assert_eq!(actions[0]["isPreferred"], true);
    // Both quotes are replaced.
    assert_eq!(
        actions[0]["edit"]["changes"][doc.as_str()],
        json!([{"range": range(2, 15, 2, 37), "newText": "\"The threads tremble.\""}])
    );
    assert!(c.shutdown().success());
}

/// Write the project `name` in `root`: `pmf.toml` (`toml`), `fleet.pmf`
/// declaring `policy fleet` with the authority `authority`, and
/// `child.pmf` declaring `policy child extends fleet` that uses it.
fn write_project(root: &Path, name: &str, authority: &str, toml: Option<&str>) {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).expect("project dir");
    if let Some(toml) = toml {
        std::fs::write(dir.join("pmf.toml"), toml).expect("write pmf.toml");
    }
    let fleet = BASE
        .replace("policy base", "policy fleet")
        .replace("QA", authority);
    let child = CHILD
        .replace("extends base", "extends fleet")
        .replace("QAA", authority)
        .replace("powr", "power");
    std::fs::write(dir.join("fleet.pmf"), fleet).expect("write fleet");
    std::fs::write(dir.join("child.pmf"), child).expect("write child");
}

/// The URIs of the locations in `result`.
fn location_uris(result: &Value) -> Vec<String> {
    result
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|loc| loc["uri"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn projects_in_one_folder_keep_their_names_apart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    // Two projects declaring the same policies, each child using an
    // authority only its own `fleet` declares.
    write_project(root, "a", "QA", Some(""));
    write_project(
        root,
        "b",
        "QB",
        Some("[project]\nexclude = [\"fixtures\"]\n"),
    );
    // Broken on purpose, and declaring `fleet` too: excluded by project b.
    std::fs::create_dir_all(root.join("b/fixtures")).expect("fixtures");
    let broken_text = "policy fleet extends kwanus\n\nauthority\n";
    std::fs::write(root.join("b/fixtures/broken.pmf"), broken_text).expect("write broken");
    // Under no `pmf.toml`: the workspace folder's own project.
    std::fs::create_dir_all(root.join("loose")).expect("loose");
    std::fs::write(root.join("loose/base.pmf"), BASE).expect("write base");
    let loose_child = CHILD.replace("QAA", "QA").replace("powr", "power");
    std::fs::write(root.join("loose/child.pmf"), &loose_child).expect("write child");

    let (mut c, _) = Client::start(root, json!({}));
    let text = |name: &str| std::fs::read_to_string(root.join(name)).expect("read");
    for name in [
        "a/fleet.pmf",
        "a/child.pmf",
        "b/fleet.pmf",
        "b/child.pmf",
        "loose/child.pmf",
    ] {
        let u = uri(root, name);
        c.open(&u, &text(name));
        let published = c.diagnostics(&u);
        assert_eq!(published["diagnostics"], json!([]), "{name}: {published}");
    }
    // `extends fleet` goes to the project's own `fleet`.
    for project in ["a", "b"] {
        let child = format!("{project}/child.pmf");
        let def = c.request(
            "textDocument/definition",
            json!({"textDocument": {"uri": uri(root, &child)},
                   "position": pos(&text(&child), "extends fleet", 0, 9)}),
        );
        assert_eq!(
            def["uri"],
            uri(root, &format!("{project}/fleet.pmf")),
            "{def}"
        );
        assert_eq!(def["range"], range(0, 7, 0, 12), "{def}");
    }
    // References of the category `quality` (declared in every project)
    // stay in the project.
    let refs = c.request(
        "textDocument/references",
        json!({"textDocument": {"uri": uri(root, "b/child.pmf")},
               "position": pos(&text("b/child.pmf"), "touches quality", 0, 9),
               "context": {"includeDeclaration": true}}),
    );
    let mut found = location_uris(&refs);
    found.sort();
    found.dedup();
    assert_eq!(
        found,
        [uri(root, "b/child.pmf"), uri(root, "b/fleet.pmf")],
        "{refs}"
    );
    // Hover on the parent names the project's own file.
    let hover = c.request(
        "textDocument/hover",
        json!({"textDocument": {"uri": uri(root, "a/child.pmf")},
               "position": pos(&text("a/child.pmf"), "extends fleet", 0, 9)}),
    );
    assert!(markdown(&hover).contains("**policy** `fleet`"), "{hover}");
    // The loose child resolves its sibling.
    let def = c.request(
        "textDocument/definition",
        json!({"textDocument": {"uri": uri(root, "loose/child.pmf")},
               "position": pos(&loose_child, "extends base", 0, 9)}),
    );
    assert_eq!(def["uri"], uri(root, "loose/base.pmf"), "{def}");
    // The excluded file is not loaded: nothing was published about it.
    let broken = uri(root, "b/fixtures/broken.pmf");
    assert!(
        !c.backlog
            .iter()
            .any(|m| m["params"]["uri"] == broken.as_str()),
        "{:?}",
        c.backlog
    );
    // Opened, it is checked alone: its own syntax error, no clash with
    // project b's `fleet`.
    c.open(&broken, broken_text);
    let diags = c.diagnostics(&broken)["diagnostics"].clone();
    assert!(
        !diags.to_string().contains("declared by two files"),
        "{diags}"
    );
    assert!(!codes_and_ranges(&diags).is_empty(), "{diags}");
    assert!(c.shutdown().success());
}

#[test]
fn a_pmf_toml_written_or_removed_moves_files_between_projects() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    // No `pmf.toml` yet: one project, two `fleet` policies.
    write_project(root, "a", "QA", None);
    write_project(root, "b", "QB", None);
    let (mut c, _) = Client::start(
        root,
        json!({"workspace": {"didChangeWatchedFiles": {"dynamicRegistration": true}}}),
    );
    let fleet = uri(root, "b/fleet.pmf");
    let text = std::fs::read_to_string(root.join("b/fleet.pmf")).expect("read");
    c.open(&fleet, &text);
    let clash = |published: &Value| {
        published["diagnostics"]
            .to_string()
            .contains("policy `fleet` is declared by two files")
    };
    let first = c.diagnostics(&fleet);
    assert!(clash(&first), "{first}");
    // `a` becomes a project of its own: the names no longer clash.
    std::fs::write(root.join("a/pmf.toml"), "").expect("write pmf.toml");
    c.notify(
        "workspace/didChangeWatchedFiles",
        json!({"changes": [{"uri": uri(root, "a/pmf.toml"), "type": 1}]}),
    );
    let apart = c.diagnostics(&fleet);
    assert_eq!(apart["diagnostics"], json!([]), "{apart}");
    // And back.
    std::fs::remove_file(root.join("a/pmf.toml")).expect("remove pmf.toml");
    c.notify(
        "workspace/didChangeWatchedFiles",
        json!({"changes": [{"uri": uri(root, "a/pmf.toml"), "type": 3}]}),
    );
    let again = c.diagnostics(&fleet);
    assert!(clash(&again), "{again}");
    assert!(c.shutdown().success());
}

#[test]
fn a_document_opened_outside_every_folder_brings_its_project() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write_project(root, "a", "QA", Some(""));
    write_project(root, "b", "QB", Some(""));
    // The child a directory below its parent, in project b.
    std::fs::create_dir_all(root.join("b/sub")).expect("sub");
    std::fs::rename(root.join("b/child.pmf"), root.join("b/sub/child.pmf")).expect("move");
    let text = std::fs::read_to_string(root.join("b/sub/child.pmf")).expect("read");
    // No workspace folder at all.
    let mut c = Client::spawn(root);
    let _ = c.request(
        "initialize",
        json!({"processId": null, "rootUri": null, "capabilities": {}}),
    );
    c.notify("initialized", json!({}));
    let child = uri(root, "b/sub/child.pmf");
    c.open(&child, &text);
    let published = c.diagnostics(&child);
    assert_eq!(published["diagnostics"], json!([]), "{published}");
    let def = c.request(
        "textDocument/definition",
        json!({"textDocument": {"uri": child}, "position": pos(&text, "extends fleet", 0, 9)}),
    );
    assert_eq!(def["uri"], uri(root, "b/fleet.pmf"), "{def}");
    assert!(c.shutdown().success());
}

const FIXTURES: &str = "policy fx_tests extends kwanus\n\
fixture base { power: 5 }\n\
fixture strong like base { power: 9 }\n\
test \"t\" {\n  partner like strong {}\n  partner like bsae {}\n}\n";

#[test]
fn fixtures_have_definition_hover_symbols_and_a_quick_fix() {
    let dir = workspace();
    let (mut c, _) = Client::start(dir.path(), json!({}));
    let file = uri(dir.path(), "fx.test.pmf");
    c.open(&file, FIXTURES);
    let at = |needle: &str, nth: usize, delta: usize| json!({"textDocument": {"uri": file}, "position": pos(FIXTURES, needle, nth, delta)});
    // `bsae` is no fixture: PMF112 on the name, with a quick fix.
    let diags = c.diagnostics(&file)["diagnostics"].clone();
    let codes: Vec<String> = codes_and_ranges(&diags)
        .into_iter()
        .map(|(c, _)| c)
        .collect();
    assert!(codes.contains(&"PMF112".to_string()), "{diags}");
    let actions = c.request(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": file}, "range": range(5, 16, 5, 16),
               "context": {"diagnostics": []}}),
    );
    assert!(
        actions.to_string().contains("Replace with `base`"),
        "{actions}"
    );
    // Definition: from `like strong` to the fixture, and from `like base`
    // in a fixture to its base.
    let def = c.request("textDocument/definition", at("like strong", 0, 6));
    assert_eq!(def["uri"], file);
    assert_eq!(def["range"], range(2, 8, 2, 14));
    let def = c.request("textDocument/definition", at("like base", 0, 6));
    assert_eq!(def["range"], range(1, 8, 1, 12));
    // Hover says what a fixture is.
    let h = c.request("textDocument/hover", at("like strong", 0, 6));
    assert!(markdown(&h).starts_with("**fixture** `strong`"), "{h}");
    // Document symbols list the fixtures.
    let symbols = c.request(
        "textDocument/documentSymbol",
        json!({"textDocument": {"uri": file}}),
    );
    let text = symbols.to_string();
    assert!(
        text.contains("fixture base") && text.contains("fixture strong"),
        "{text}"
    );
}
