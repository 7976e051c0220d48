//! The `attachd` command: `serve`, `token new` and `audit verify`.
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
    },
}

fn toml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
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
            cmd: AuditCmd::Verify { paths },
        } => {
            // The head file beside the current (last) file shows a cut tail.
            let head = attachd_actors::audit::head_path(&paths[paths.len() - 1]);
            let files = if paths.len() == 1 {
                attachd_actors::audit::chain_files(&paths[0]).unwrap_or(paths)
            } else {
                paths
            };
            let report = attachd_actors::audit::verify_anchored(&files, &head);
            println!(
                "{}",
                serde_json::json!({
                    "ok": report.ok,
                    "records": report.records,
                    "first_bad_seq": report.first_bad_seq,
                    "message": report.message,
                })
            );
            if report.ok {
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "attachd: audit chain broken at seq {}: {}",
                    report
                        .first_bad_seq
                        .map_or_else(|| "?".to_string(), |s| s.to_string()),
                    report.message
                );
                ExitCode::from(1)
            }
        }
    }
}
