//! Standard output for the commands' reports. `print!` panics when a
//! write fails (a full disk, a closed pipe where `SIGPIPE` is ignored): here
//! the first failure is kept, later output is dropped, and [`super::run`]
//! reports it when the command ends (exit 2), so a report that did not
//! reach its reader never passes for a success. A reader that went away
//! (a broken pipe: `pmf lineage show | head`) is not reported, like other
//! Unix tools stop quietly. Messages to stderr (`errln!`) are written
//! when they can be: with stderr full or closed nothing can be said, and
//! the exit code still tells what happened (`eprintln!` would panic, and
//! the panic's own message would abort the process).

use std::io::Write;
use std::sync::Mutex;

/// The first write to stdout that failed.
static FAILED: Mutex<Option<std::io::Error>> = Mutex::new(None);

/// Write `args` to stdout (what `out!` and `outln!` expand to), unless an
/// earlier write failed.
pub fn print(args: std::fmt::Arguments<'_>) {
    let Ok(mut failed) = FAILED.lock() else {
        return;
    };
    if failed.is_none()
        && let Err(e) = std::io::stdout().lock().write_fmt(args)
    {
        *failed = Some(e);
    }
}

/// Keep `e` as stdout's failure, unless one is kept already (for commands
/// that write stdout through a writer of their own).
pub fn failed_with(e: std::io::Error) {
    if let Ok(mut failed) = FAILED.lock()
        && failed.is_none()
    {
        *failed = Some(e);
    }
}

/// Flush stdout and take its failure, if a write failed for another
/// reason than its reader going away.
pub fn failure() -> Option<std::io::Error> {
    if let Err(e) = std::io::stdout().lock().flush() {
        failed_with(e);
    }
    FAILED
        .lock()
        .ok()?
        .take()
        .filter(|e| e.kind() != std::io::ErrorKind::BrokenPipe)
}

/// Write `args` to stderr if it can be written (what `errln!` expands to).
pub fn print_err(args: std::fmt::Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(args);
}

/// A message line on stderr, every character a terminal would obey in it
/// (an escape sequence, a carriage return, a bidirectional override, which
/// text read from a file can carry into a message: a store edited outside
/// pmf, a lock file, a plan) written as a `\u{...}` escape, line ends and
/// tabs aside: a message never forges or hides what pmf says.
pub fn print_err_line(args: std::fmt::Arguments<'_>) {
    let _ = std::io::stderr()
        .lock()
        .write_all(shown_message(&args.to_string()).as_bytes());
}

/// Whether a terminal would obey `c` in a message (a control character but
/// line ends and tabs, a C1 control, a layout control such as a bidi
/// override): what a report quoting a policy escapes, carriage returns too.
fn obeyed(c: char) -> bool {
    pmf_syntax::diagnostics::render::obeyed_by_terminals(c) || c == '\r'
}

/// Whether `text` holds a character a terminal would obey ([`obeyed`]),
/// read in its UTF-8 bytes (a report's every line is asked): a C0 control
/// but line end and tab, DEL, a C1 control (`C2 80`–`C2 9F`), U+061C
/// (`D8 9C`), U+200E, U+200F, U+2028–U+202E (`E2 80 …`), U+2066–U+2069
/// (`E2 81 A6`–`A9`).
fn any_obeyed(text: &str) -> bool {
    let b = text.as_bytes();
    b.iter().enumerate().any(|(i, &x)| match x {
        0x00..=0x08 | 0x0b..=0x1f | 0x7f => true,
        0xc2 => matches!(b.get(i + 1), Some(0x80..=0x9f)),
        0xd8 => b.get(i + 1) == Some(&0x9c),
        0xe2 => matches!(
            (b.get(i + 1), b.get(i + 2)),
            (Some(0x80), Some(0x8e | 0x8f | 0xa8..=0xae)) | (Some(0x81), Some(0xa6..=0xa9))
        ),
        _ => false,
    })
}

/// `text` with every character a terminal would obey written as
/// `escape(c)`.
fn escaped(text: &str, escape: fn(char) -> String) -> std::borrow::Cow<'_, str> {
    if !any_obeyed(text) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if obeyed(c) {
            out.push_str(&escape(c));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// `text` with every character a terminal would obey, but line ends and
/// tabs, written as a `\u{...}` escape.
pub fn shown_message(text: &str) -> std::borrow::Cow<'_, str> {
    escaped(text, |c| format!("\\u{{{:04x}}}", u32::from(c)))
}

/// JSON text (as serde_json writes it) with every character a terminal
/// would obey written as JSON's `\uXXXX` escape: serde_json leaves DEL, C1
/// controls and bidi overrides in strings as they are, and only strings
/// hold them, where the escape means the very same character.
pub fn json_safe(text: &str) -> std::borrow::Cow<'_, str> {
    escaped(text, |c| format!("\\u{:04x}", u32::from(c)))
}

/// `value` as JSON to `w`, through [`json_safe`] (a row of `plan show` or
/// `plan diff` in JSON, whose texts come from a plan file; apply's line
/// for a partner, whose reason quotes the policy).
pub fn write_json_safe(w: &mut dyn Write, value: &impl serde::Serialize) -> std::io::Result<()> {
    // The values written are structs of strings and numbers: they serialise.
    let json = serde_json::to_string(value).unwrap_or_default();
    w.write_all(json_safe(&json).as_bytes())
}

/// A line of a report on stdout (what `outln!` expands to): as [`print`],
/// every character a terminal would obey (text read from a store edited
/// outside pmf, from a plan) written as `\uXXXX`, line ends and tabs
/// aside. That is JSON's escape: a JSON document printed so stays valid,
/// and reads back the same.
pub fn print_line(args: std::fmt::Arguments<'_>) {
    // One buffer a thread, reused line after line (`lineage show` prints
    // millions).
    thread_local! {
        static LINE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    LINE.with(|line| {
        let Ok(mut line) = line.try_borrow_mut() else {
            // Printing from within a line's own formatting: unbuffered.
            let text = args.to_string();
            print(format_args!("{}", json_safe(&text)));
            return;
        };
        line.clear();
        let _ = std::fmt::Write::write_fmt(&mut *line, args);
        print(format_args!("{}", json_safe(&line)));
    });
}

/// A JSON array written an element at a time, laid out as serde_json's
/// pretty printer lays out the whole array at `depth` (its elements one
/// level in): a store's millions of rows are printed as they are read.
/// `opening` (what stands before the array) is written with the first
/// element, or at the end when there is none.
pub struct StreamedArray {
    opening: &'static str,
    depth: usize,
    count: usize,
}

impl StreamedArray {
    /// An array after `opening`, nested `depth` levels deep.
    pub fn new(opening: &'static str, depth: usize) -> Self {
        StreamedArray {
            opening,
            depth,
            count: 0,
        }
    }

    /// Write `value` as the next element.
    pub fn element(&mut self, value: &serde_json::Value) {
        let text = serde_json::to_string_pretty(value).unwrap_or_default();
        // As `outln!` writes them: what a terminal would obey, escaped.
        let text = json_safe(&text);
        let indent = "  ".repeat(self.depth + 1);
        if self.count == 0 {
            out!("{}[\n", self.opening);
        } else {
            out!(",\n");
        }
        for (i, line) in text.lines().enumerate() {
            out!("{}{indent}{line}", if i == 0 { "" } else { "\n" });
        }
        self.count += 1;
    }

    /// Close the array (`[]` when it has no element); how many it had.
    pub fn finish(self) -> usize {
        if self.count == 0 {
            out!("{}[]", self.opening);
        } else {
            out!("\n{}]", "  ".repeat(self.depth));
        }
        self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The byte scan finds what the character test finds, for every
    /// character, alone and between others.
    #[test]
    fn the_byte_scan_answers_as_the_character_test() {
        for c in (0..=0x10ffff_u32).filter_map(char::from_u32) {
            for text in [c.to_string(), format!("a{c}é"), format!("—{c}\u{2027}")] {
                assert_eq!(
                    any_obeyed(&text),
                    text.chars().any(obeyed),
                    "U+{:04X}",
                    u32::from(c)
                );
            }
        }
    }

    /// The store's copy of the set (it depends on no other PMF crate) is
    /// the syntax layer's, character for character.
    #[test]
    fn the_store_escapes_what_the_syntax_layer_escapes() {
        for c in (0..=0x10ffff_u32).filter_map(char::from_u32) {
            assert_eq!(
                pmf_store::shown::obeyed_by_terminals(c),
                pmf_syntax::diagnostics::render::obeyed_by_terminals(c),
                "U+{:04X}",
                u32::from(c)
            );
        }
    }

    /// What a terminal would obey is escaped; line ends, tabs and any other
    /// text (accents, CJK) are kept as they are.
    #[test]
    fn a_message_cannot_drive_the_terminal() {
        assert!(matches!(
            shown_message("plain\n\ttext é 漢"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(
            shown_message("partner `p-1\u{1b}[2J\r\u{202e}\u{9b}x`\n"),
            "partner `p-1\\u{001b}[2J\\u{000d}\\u{202e}\\u{009b}x`\n"
        );
        // On stdout, as JSON escapes it: a document stays valid and reads
        // back the same.
        let doc = serde_json::json!({"reason": "p-1\u{1b}[2J\u{202e}\u{9b}\u{2028}"});
        let printed = json_safe(&doc.to_string()).into_owned();
        assert_eq!(printed, r#"{"reason":"p-1\u001b[2J\u202e\u009b\u2028"}"#);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&printed).unwrap(),
            doc
        );
    }
}
