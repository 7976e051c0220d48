//! The `attachd` command: `serve`, `token new`, `audit verify`, `record text`, and the client
//! (`attach`, `sessions`).
//! Everything else lives in the library so tests and tools can reach it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use attachd::config;
use attachd::listen::Listeners;
use attachd::scope::Scope;
use attachd::secret::{new_secret, sha256_hex};

#[derive(Parser)]
#[command(name = "attachd", version, about = "Hardened WebSocket attach gateway")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the gateway.
    Serve {
        /// Embedded default: local PTY, in-memory limits, dev token, localhost origins.
        #[arg(long)]
        dev: bool,
        /// TOML configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// API tokens.
    Token {
        #[command(subcommand)]
        cmd: TokenCmd,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        cmd: AuditCmd,
    },
    /// Session recordings.
    Record {
        #[command(subcommand)]
        cmd: RecordCmd,
    },
    /// Attach this terminal to a session (like `kubectl exec -it`).
    Attach(attachd::cli::AttachArgs),
    /// List, create and delete sessions.
    Sessions(attachd::cli::SessionsArgs),
}

#[derive(Subcommand)]
enum RecordCmd {
    /// Print a recording's final screen and the text typed in it (for grep).
    Text {
        /// An asciicast v2 file.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Print a fresh secret once, and the `auth.static_tokens` entry that admits it.
    New {
        /// Principal subject.
        #[arg(long)]
        subject: String,
        /// Principal tenant.
        #[arg(long)]
        tenant: String,
        /// Comma-separated scopes.
        #[arg(long, value_delimiter = ',')]
        scopes: Vec<String>,
        /// Also append the entry (never the secret) to this config file, creating it if needed
        /// (`make run` reads `./attachd.toml`).
        #[arg(long, value_name = "FILE")]
        append: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Verify the hash chain of audit files (rotated files first, in chain order).
    Verify {
        /// Audit files, or the current file to verify with its rotations.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Recordings to check against their chunk records (default: `recording.dir` of the
        /// configuration in use, else `recordings/` beside the audit file).
        #[arg(long, value_name = "DIR")]
        recordings: Option<PathBuf>,
        /// The configuration whose `recording.dir` holds the recordings.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn toml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// The exit status of a client subcommand (255 when its runtime could not start).
fn client_exit(status: std::io::Result<u8>) -> ExitCode {
    match status {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("attachd: cannot start: {e}");
            ExitCode::from(attachd::cli::EXIT_LOST)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Attach(args) => client_exit(attachd::cli::block_on(attachd::cli::attach::run(args))),
        Cmd::Sessions(args) => {
            client_exit(attachd::cli::block_on(attachd::cli::sessions::run(args)))
        }
        Cmd::Serve { dev, config: file } => {
            let settings = match config::load(file.as_deref(), dev) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("attachd: {e}");
                    return ExitCode::from(2);
                }
            };
            if let Err(e) = settings.validate() {
                eprintln!("attachd: {e}");
                return ExitCode::from(2);
            }
            // Listeners first: a busy port is the one error, before anything else is opened.
            let listeners =
                match Listeners::bind(settings.server.listen, settings.server.admin_listen) {
                    Ok(l) => l,
                    Err(e) => {
                        eprintln!("attachd: {e}");
                        return ExitCode::from(1);
                    }
                };
            let sys = actix_web::rt::System::new();
            match sys.block_on(attachd::server::run(settings, listeners)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("attachd: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Cmd::Token {
            cmd:
                TokenCmd::New {
                    subject,
                    tenant,
                    scopes,
                    append,
                },
        } => {
            for s in &scopes {
                if Scope::parse(s).is_none() {
                    eprintln!(
                        "attachd: unknown scope {s:?}; known scopes: {}",
                        Scope::names()
                    );
                    return ExitCode::from(2);
                }
            }
            if subject.trim().is_empty() || tenant.trim().is_empty() {
                eprintln!("attachd: --subject and --tenant must not be empty");
                return ExitCode::from(2);
            }
            let secret = new_secret("adt_");
            let list: Vec<String> = scopes.iter().map(|s| toml_str(s)).collect();
            let entry = format!(
                "[[auth.static_tokens]]\nsubject = {}\ntenant = {}\nscopes = [{}]\nsha256 = \"{}\"\n",
                toml_str(&subject),
                toml_str(&tenant),
                list.join(", "),
                sha256_hex(&secret)
            );
            println!("# API token for {subject} (tenant {tenant}). The secret is shown once:");
            println!("# {secret}");
            print!("{entry}");
            if let Some(file) = append {
                let appended = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&file)
                    .and_then(|mut f| {
                        use std::io::Write;
                        write!(f, "\n# API token for {subject} (tenant {tenant})\n{entry}")
                    });
                if let Err(e) = appended {
                    eprintln!("attachd: cannot append to {}: {e}", file.display());
                    return ExitCode::from(1);
                }
                println!(
                    "# appended to {}; restart with --config {} (make run reads ./attachd.toml)",
                    file.display(),
                    file.display()
                );
            }
            ExitCode::SUCCESS
        }
        Cmd::Audit {
            cmd:
                AuditCmd::Verify {
                    paths,
                    recordings,
                    config: file,
                },
        } => {
            let dir = match recordings_dir(recordings, file.as_deref(), &paths[paths.len() - 1]) {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("attachd: {e}");
                    return ExitCode::from(2);
                }
            };
            verify_audit(paths, &dir)
        }
        Cmd::Record {
            cmd: RecordCmd::Text { file },
        } => match attachd::recording::text(&file) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("attachd: {}: {e}", file.display());
                ExitCode::from(1)
            }
        },
    }
}

/// Where `audit verify` looks for recordings: `--recordings`, else `recording.dir` of the
/// configuration in use (`--config` or `ATTACHD__RECORDING__DIR`), else beside the audit file.
fn recordings_dir(
    given: Option<PathBuf>,
    file: Option<&std::path::Path>,
    audit: &std::path::Path,
) -> Result<PathBuf, config::ConfigError> {
    if let Some(d) = given {
        return Ok(d);
    }
    if file.is_some() || std::env::var_os("ATTACHD__RECORDING__DIR").is_some() {
        return Ok(config::load(file, false)?.recording.dir);
    }
    Ok(attachd::recording::beside(audit))
}

/// `attachd audit verify`: the chain, then the recordings against their chunk records.
fn verify_audit(paths: Vec<PathBuf>, dir: &std::path::Path) -> ExitCode {
    use attachd_actors::recording::verify::{verify_dir, ChunkIndex};
    // The head file beside the current (last) file shows a cut tail.
    let head = attachd_actors::audit::head_path(&paths[paths.len() - 1]);
    let files = if paths.len() == 1 {
        attachd_actors::audit::chain_files(&paths[0]).unwrap_or(paths)
    } else {
        paths
    };
    let report = attachd_actors::audit::verify_anchored(&files, &head);
    let rec = ChunkIndex::load(&files).map(|idx| verify_dir(&idx, dir));
    let rec_json = match &rec {
        Ok(r) => serde_json::json!({
            "ok": r.ok,
            "dir": dir.display().to_string(),
            "files": r.files,
            "chunks": r.chunks,
            "first_bad": r.first_bad,
        }),
        Err(e) => {
            serde_json::json!({"ok": false, "dir": dir.display().to_string(), "error": e.to_string()})
        }
    };
    println!(
        "{}",
        serde_json::json!({
            "ok": report.ok,
            "records": report.records,
            "first_bad_seq": report.first_bad_seq,
            "message": report.message,
            "recordings": rec_json,
        })
    );
    let mut ok = true;
    if !report.ok {
        ok = false;
        eprintln!(
            "attachd: audit chain broken at seq {}: {}",
            report
                .first_bad_seq
                .map_or_else(|| "?".to_string(), |s| s.to_string()),
            report.message
        );
    }
    match rec {
        Ok(r) => {
            if let Some(b) = r.first_bad {
                ok = false;
                eprintln!(
                    "attachd: recording {}/{} fails at chunk {}: {}",
                    b.session_id, b.file, b.chunk, b.reason
                );
            }
        }
        Err(e) => {
            ok = false;
            eprintln!("attachd: cannot read the chunk records: {e}");
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
