//! Policy projects: which files of the session see each other's names.
//!
//! The rule is `pmf check`'s ([`crate::cli::files`]): a file belongs to the
//! project of the nearest directory at or above it that holds a
//! `pmf.toml`. A file under no `pmf.toml` belongs to the default project of
//! the workspace folder it is in (the files `pmf check FOLDER` checks
//! together) or, outside every folder, to that of its directory. Folders a
//! project excludes (`[project] exclude`) are not loaded; a document opened
//! in one is a project of its own. A document without a file path (such
//! as `untitled:`) joins the project of the first workspace folder.
//!
//! All files live in the session's one salsa database, parsed once; each
//! project is a [`Workspace`] input of its own (the stdlib and the
//! project's files), and every query of a document runs against its
//! project's input. An edit re-runs only the queries of its own project,
//! and a file added to one project leaves the others' queries valid.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::cli::files;

use crate::db::{Session, SourceFile, Workspace};

/// What identifies a project.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ProjectKey {
    /// The files of a directory: a project root (holding a `pmf.toml`), a
    /// workspace folder's files under no `pmf.toml`, or the files of a
    /// directory outside every folder.
    Directory(PathBuf),
    /// One document alone (opened in a folder its project excludes).
    Alone(String),
}

/// The project of the file at `path` among the workspace `folders`.
/// `check_excluded`: find out whether a project excludes the file (it
/// reads the `pmf.toml` files above it; files found by a walk are never
/// excluded, the walk skipped those).
pub fn project_key(path: &str, folders: &[PathBuf], check_excluded: bool) -> ProjectKey {
    let file = Path::new(path);
    if !file.is_absolute() {
        return match folders.first() {
            Some(folder) => {
                ProjectKey::Directory(files::project_root(folder).unwrap_or(folder.clone()))
            }
            None => ProjectKey::Alone(path.to_string()),
        };
    }
    if check_excluded && files::excluded(file) {
        return ProjectKey::Alone(path.to_string());
    }
    if let Some(root) = files::project_root(file) {
        return ProjectKey::Directory(root);
    }
    let folder = folders
        .iter()
        .filter(|f| file.starts_with(f))
        .max_by_key(|f| f.components().count());
    match (folder, file.parent()) {
        (Some(folder), _) => ProjectKey::Directory(folder.clone()),
        (None, Some(dir)) => ProjectKey::Directory(dir.to_path_buf()),
        (None, None) => ProjectKey::Alone(path.to_string()),
    }
}

/// The projects of a session's files, each with its workspace input.
pub struct Projects {
    /// Each project's input: the stdlib and the project's files.
    workspaces: HashMap<ProjectKey, Workspace>,
    /// The project of every file of the session but the stdlib.
    members: HashMap<String, ProjectKey>,
    /// The stdlib alone: the project of the stdlib's document.
    stdlib_only: Workspace,
}

impl Projects {
    /// No project yet (the session holds only the stdlib).
    pub fn new(session: &Session) -> Self {
        Projects {
            workspaces: HashMap::new(),
            members: HashMap::new(),
            stdlib_only: Workspace::new(session.db(), vec![session.stdlib]),
        }
    }

    /// The input the queries of the file at `path` run against: its
    /// project's (the stdlib alone for the stdlib and unknown paths).
    pub fn workspace_of(&self, path: &str) -> Workspace {
        self.members
            .get(path)
            .and_then(|key| self.workspaces.get(key))
            .copied()
            .unwrap_or(self.stdlib_only)
    }

    /// The project of the file at `path`, if the session has the file.
    pub fn key_of(&self, path: &str) -> Option<&ProjectKey> {
        self.members.get(path)
    }

    /// The paths of every file in a project.
    pub fn paths(&self) -> Vec<String> {
        self.members.keys().cloned().collect()
    }

    /// Set the text of the file at `path` (added when new) and put it in
    /// the project `key`.
    pub fn set_file(
        &mut self,
        session: &mut Session,
        path: &str,
        text: String,
        key: ProjectKey,
    ) -> SourceFile {
        let file = session.set_file(path, text);
        self.assign(session, path, file, key);
        file
    }

    /// Put `file` (at `path`) in the project `key`, out of any other.
    pub fn assign(&mut self, session: &mut Session, path: &str, file: SourceFile, key: ProjectKey) {
        if self.members.get(path) == Some(&key) {
            return;
        }
        if let Some(old) = self.members.remove(path) {
            self.leave(session, &old, file);
        }
        let stdlib = session.stdlib;
        let ws = *self
            .workspaces
            .entry(key.clone())
            .or_insert_with(|| Workspace::new(session.db(), vec![stdlib]));
        // In path order after the stdlib, as `pmf check` walks them: which
        // of two files declaring one name comes first (and is not reported)
        // does not depend on the order they were opened or loaded in.
        let db = session.db();
        let mut files = ws.files(db).clone();
        if !files.contains(&file) {
            let before = files.get(1..).map_or(0, |rest| {
                rest.partition_point(|f| Path::new(f.path(db)) < Path::new(path))
            });
            files.insert((before + 1).min(files.len()), file);
            session.set_workspace_files(ws, files);
        }
        self.members.insert(path.to_string(), key);
    }

    /// Remove the file at `path` from its project and from the session.
    pub fn remove_file(&mut self, session: &mut Session, path: &str) {
        if let (Some(file), Some(key)) = (session.file(path), self.members.remove(path)) {
            self.leave(session, &key, file);
        }
        session.remove_file(path);
    }

    /// Take `file` out of the project `key`; a project left with only the
    /// stdlib is forgotten.
    fn leave(&mut self, session: &mut Session, key: &ProjectKey, file: SourceFile) {
        let Some(&ws) = self.workspaces.get(key) else {
            return;
        };
        let files: Vec<SourceFile> = ws
            .files(session.db())
            .iter()
            .copied()
            .filter(|f| *f != file)
            .collect();
        if files.len() <= 1 {
            self.workspaces.remove(key);
        }
        session.set_workspace_files(ws, files);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_group_by_the_nearest_pmf_toml_then_by_folder() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::path::absolute(dir.path()).unwrap();
        let a = root.join("a");
        std::fs::create_dir_all(a.join("sub")).unwrap();
        std::fs::create_dir_all(a.join("fixtures")).unwrap();
        std::fs::create_dir_all(root.join("loose/deep")).unwrap();
        std::fs::write(a.join("pmf.toml"), "[project]\nexclude = [\"fixtures\"]\n").unwrap();
        let folders = vec![root.clone()];
        let key = |p: &Path| project_key(&p.display().to_string(), &folders, true);
        assert_eq!(key(&a.join("sub/x.pmf")), ProjectKey::Directory(a.clone()));
        assert_eq!(
            key(&root.join("loose/deep/y.pmf")),
            ProjectKey::Directory(root.clone())
        );
        let fixture = a.join("fixtures/broken.pmf");
        assert_eq!(
            key(&fixture),
            ProjectKey::Alone(fixture.display().to_string())
        );
        assert_eq!(
            project_key("untitled:Untitled-1", &folders, true),
            ProjectKey::Directory(root.clone())
        );
        assert_eq!(
            project_key("untitled:Untitled-1", &[], true),
            ProjectKey::Alone("untitled:Untitled-1".into())
        );
    }

    #[test]
    fn a_file_moves_between_projects() {
        let mut session = Session::default();
        let mut projects = Projects::new(&session);
        let a = ProjectKey::Directory("/a".into());
        let b = ProjectKey::Directory("/b".into());
        let f = projects.set_file(&mut session, "/a/f.pmf", "policy f\n".into(), a.clone());
        let ws_a = projects.workspace_of("/a/f.pmf");
        assert_eq!(ws_a.files(session.db()).len(), 2);
        projects.assign(&mut session, "/a/f.pmf", f, b.clone());
        assert_eq!(projects.key_of("/a/f.pmf"), Some(&b));
        assert_eq!(ws_a.files(session.db()).len(), 1);
        assert_eq!(
            projects.workspace_of("/a/f.pmf").files(session.db()).len(),
            2
        );
        projects.remove_file(&mut session, "/a/f.pmf");
        assert!(session.file("/a/f.pmf").is_none());
        assert_eq!(projects.workspace_of("/a/f.pmf"), projects.stdlib_only);
    }

    #[test]
    fn an_edit_reruns_only_its_own_projects_queries() {
        let (db, log) = crate::db::Database::with_execution_log();
        let mut session = Session::new(db);
        let mut projects = Projects::new(&session);
        let text = "policy fleet extends kwanus\n";
        let a = ProjectKey::Directory("/a".into());
        let b = ProjectKey::Directory("/b".into());
        let fa = projects.set_file(&mut session, "/a/fleet.pmf", text.into(), a);
        let fb = projects.set_file(&mut session, "/b/fleet.pmf", text.into(), b);
        let (ws_a, ws_b) = (
            projects.workspace_of("/a/fleet.pmf"),
            projects.workspace_of("/b/fleet.pmf"),
        );
        for (ws, f) in [(ws_a, fa), (ws_b, fb)] {
            let diags = crate::db::check_file(session.db(), ws, f);
            assert!(
                diags
                    .iter()
                    .all(|d| !d.message.contains("declared by two files")),
                "{diags:?}"
            );
        }
        session.set_file("/a/fleet.pmf", format!("{text}// edited\n"));
        log.lock().unwrap().clear();
        let _ = crate::db::check_file(session.db(), ws_a, fa);
        assert!(!log.lock().unwrap().is_empty(), "the edited project re-ran");
        log.lock().unwrap().clear();
        let _ = crate::db::check_file(session.db(), ws_b, fb);
        assert!(log.lock().unwrap().is_empty(), "{:?}", log.lock().unwrap());
    }
}
