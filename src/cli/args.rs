//! Command-line arguments of the client subcommands (clap), kept apart from what they do.
//! The API token is never an argument: it comes from `--token-file` or `ATTACHD_TOKEN`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// Where the gateway is and how to prove who we are.
#[derive(Args, Debug, Clone)]
pub struct ServerArgs {
    /// Base URL of the gateway (`http://`, or `https://` for TLS), with its path prefix when
    /// it is served under one (`https://host/attachd/`).
    #[arg(
        long,
        global = true,
        env = "ATTACHD_SERVER",
        default_value = "http://127.0.0.1:8080",
        value_name = "URL"
    )]
    pub server: String,
    /// File holding the API token (else the `ATTACHD_TOKEN` environment variable).
    /// `make run` writes its dev token to `data/dev-token`.
    #[arg(long, global = true, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Trust only the CA certificates in this PEM file instead of the system's (a private CA).
    #[arg(long, global = true, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
}

/// `attachd attach`.
#[derive(Args, Debug, Clone)]
#[command(after_help = "\
Keys, at the start of a line: `~.` detaches (the session keeps running), `~r` asks the holder
for control, `~?` lists the escapes, `~~` sends one `~`. While someone asks you for control,
`~y` gives it and `~n` denies, anywhere in a line.
Exit status: the remote process's exit code; 0 after `~.`; 255 when the session is lost for
good or cannot be reached; 128+N after signal N.")]
pub struct AttachArgs {
    /// The session to attach to (see `attachd sessions list`).
    pub session_id: String,
    /// Watch only (needs `attach:observe`); input is not sent.
    #[arg(long)]
    pub observe: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// `attachd sessions`.
#[derive(Args, Debug, Clone)]
pub struct SessionsArgs {
    #[command(subcommand)]
    pub cmd: SessionsCmd,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// The session API.
#[derive(Subcommand, Debug, Clone)]
pub enum SessionsCmd {
    /// List the sessions of your tenant.
    List {
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Create a session (the server's default command unless one is given after `--`).
    Create {
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Print the API's JSON instead of a table.
        #[arg(long, conflicts_with = "quiet")]
        json: bool,
        /// Print only the new session's id.
        #[arg(long, short)]
        quiet: bool,
        /// Input is written only while a moderator watches (needs `attach:moderate`).
        #[arg(long)]
        moderated: bool,
        /// argv of the process; must be one the server allows.
        #[arg(last = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// Terminate a session.
    Delete {
        /// The session to terminate.
        session_id: String,
        /// Print `{"id": …, "deleted": true}` instead of a sentence.
        #[arg(long)]
        json: bool,
    },
}
