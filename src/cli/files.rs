//! Files for the commands: finding and reading policy files by the
//! project rules of [`pmf_compiler::project`], and writing outputs whole.

use std::path::Path;

pub use pmf_compiler::project::{
    Found, PROJECT_FILE, ProjectError, collect, collect_all, excluded, project_excludes,
    project_root, read_text, trust_root,
};
pub use pmf_syntax::diagnostics::io_reason;

use super::{CliError, UsageError};

impl From<ProjectError> for UsageError {
    fn from(e: ProjectError) -> Self {
        UsageError(e.0)
    }
}

/// A file the project rules cannot find or read is a usage problem.
impl From<ProjectError> for CliError {
    fn from(e: ProjectError) -> Self {
        CliError::Usage(e.into())
    }
}

/// Write `text` to `path` whole (see [`crate::output`]: never
/// half-written); a failure is a usage error naming the path.
pub fn write_text(path: &Path, text: &str) -> Result<(), UsageError> {
    crate::output::write(path, text.as_bytes(), false).map_err(|e| {
        UsageError(format!(
            "cannot write `{}`: {}",
            path.display(),
            io_reason(&e)
        ))
    })
}

/// Refuse to write `output` (`what`) over one of `inputs` (each with the
/// flag that gave it): renamed over it, the output would replace a file the
/// command read, the store itself or a policy. Usage error, exit 2.
pub fn refuse_output_over(
    output: &Path,
    what: &str,
    inputs: &[(&Path, &str)],
) -> Result<(), UsageError> {
    use std::os::unix::fs::MetadataExt;
    let Some(out) = std::fs::metadata(output).ok().filter(|m| m.is_file()) else {
        return Ok(());
    };
    let same =
        |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.dev() == out.dev() && m.ino() == out.ino());
    match inputs.iter().find(|(p, _)| same(p)) {
        Some((_, flag)) => Err(UsageError(format!(
            "`{}` is the file given as `{flag}`: {what} would replace it; write {what} to another file",
            output.display()
        ))),
        None => Ok(()),
    }
}
